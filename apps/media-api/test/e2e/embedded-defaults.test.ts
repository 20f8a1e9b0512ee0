import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { access, chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyId } from '../../src/auth/key-ring';
import { freePort, startTestApp, type TestApp } from '../support/test-app';
import { dataUrl, pngImage } from '../support/images';

/**
 * The README's first command: no DSN, no keys, no cloud. The embedded database, local disk and
 * generated secrets live in the data directory and survive a restart.
 */
describe('embedded defaults (no environment)', () => {
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'jan-media-embedded-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('serves ingest → GET → resolve, and keeps data, keys and ids across a restart', async () => {
    const png = await pngImage(42, 32);
    const first = await startTestApp({ engine: 'embedded', dataDir });
    let id: string;
    let key: string;
    try {
      expect(first.running.database.engine).toBe('embedded');
      key = (await readFile(join(dataDir, 'secrets', 'service-key'), 'utf8')).trim();
      expect(first.running.generatedServiceKey).toBe(key);

      const res = await first.call('/v1/media', {
        method: 'POST',
        user: 'u1',
        body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(png) } }),
      });
      expect(res.status).toBe(200);
      ({ id } = await res.json() as any);
      expect((await first.call('/readyz', { key: null })).status).toBe(200);
    } finally {
      await first.close();
    }

    const second = await startTestApp({ engine: 'embedded', dataDir });
    try {
      expect(second.running.config.serviceKeys).toEqual([key]);
      const again = await second.call('/v1/media', {
        method: 'POST',
        user: 'u1',
        body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(png) } }),
      });
      expect(await again.json() as any).toMatchObject({ id, deduped: true });

      const got = await second.call(`/v1/media/${id}`, { user: 'u1' });
      expect(Buffer.from(await got.arrayBuffer())).toEqual(png);

      const resolved = await second.call('/v1/media/resolve', {
        method: 'POST',
        user: 'u1',
        body: JSON.stringify({ payload: { image_url: { url: `data:image/png;base64,${id}` } } }),
      });
      const url = (await resolved.json() as any).payload.image_url.url;
      expect(Buffer.from(await (await fetch(url)).arrayBuffer())).toEqual(png);
    } finally {
      await second.close();
    }
  });
  it('refuses to start on a truncated service-key file rather than accepting an empty X-Media-Service-Key', async () => {
    const own = await mkdtemp(join(tmpdir(), 'jan-media-embedded-truncated-'));
    try {
      await (await startTestApp({ engine: 'embedded', dataDir: own })).close();
      // What a full disk, a crash while the file was first written or a bad restore leaves behind.
      await writeFile(join(own, 'secrets', 'service-key'), '');

      const started: TestApp | Error = await startTestApp({ engine: 'embedded', dataDir: own }).catch((error: Error) => error);
      if (!(started instanceof Error)) {
        try {
          const res = await fetch(`${started.baseUrl}/v1/usage`, { headers: { 'x-media-service-key': '', 'x-jan-user-id': 'u1' } });
          expect(res.status).toBe(401);
        } finally {
          await started.close();
        }
      }
      expect(started).toBeInstanceOf(Error);
      expect((started as Error).message).toContain(join(own, 'secrets', 'service-key'));
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  });

  it('a second copy on the same data directory, or on a taken port, exits 75 with one line naming the fix', async () => {
    const own = await mkdtemp(join(tmpdir(), 'jan-media-embedded-twice-'));
    const other = await mkdtemp(join(tmpdir(), 'jan-media-embedded-port-'));
    const running = await startTestApp({ engine: 'embedded', dataDir: own });
    try {
      const sameDir = await runEmbedded(own);
      expect({ exitCode: sameDir.exitCode, healthy: sameDir.healthy }).toEqual({ exitCode: 75, healthy: false });
      expect(sameDir.stderr).toContain(`embedded database is in use by process ${process.pid}`);
      expect(sameDir.stderr).toContain('another MEDIA_DATA_DIR');
      expect(sameDir.stderr).not.toMatch(/\n\s+at /);

      // Its /healthz would be the first one's: wait for the exit instead.
      const samePort = await runUntilExit(other, Number(new URL(running.baseUrl).port));
      expect(samePort.exitCode).toBe(75);
      expect(samePort.stderr).toContain(`port ${new URL(running.baseUrl).port} on 127.0.0.1 is already in use; stop what listens there, or set MEDIA_API_PORT`);
      expect(samePort.stderr).not.toMatch(/\n\s+at /);
      // It let go of its own data directory on the way out (closed, not merely exited).
      await expect(access(join(other, 'pglite.lock'))).rejects.toMatchObject({ code: 'ENOENT' });
      // The first one never noticed.
      expect((await fetch(`${running.baseUrl}/healthz`)).status).toBe(200);
    } finally {
      await running.close();
      await rm(own, { recursive: true, force: true });
      await rm(other, { recursive: true, force: true });
    }
  }, 90_000);

  // A full disk needs a small file system, which only root can mount (CI runs as root). A user's
  // `pnpm test` gets the other failure the same exit covers: a directory it may not write in
  // (root is exempt from permission bits, so that one cannot be shown to root).
  it('on a data directory it cannot write (full as root, read-only otherwise), the first start exits 73 with one line naming it and the cause, no stack trace', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'jan-media-embedded-unwritable-'));
    const asRoot = process.getuid?.() === 0;
    if (asRoot) execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', parent]);
    else await chmod(parent, 0o555);
    try {
      const refused = await runEmbedded(join(parent, 'data'));
      expect({ exitCode: refused.exitCode, healthy: refused.healthy }).toEqual({ exitCode: 73, healthy: false });
      expect(refused.stderr).toContain(join(parent, 'data'));
      expect(refused.stderr).toContain(asRoot ? 'ENOSPC' : 'EACCES');
      expect(refused.stderr).toContain('MEDIA_DATA_DIR');
      expect(refused.stderr).not.toContain('[object Object]');
      expect(refused.stderr).not.toMatch(/\n\s+at /);
    } finally {
      if (asRoot) await unmount(parent);
      else await chmod(parent, 0o755);
      await rm(parent, { recursive: true, force: true });
    }
  }, 120_000);

  it('a restart right after kill -9 during concurrent uploads starts, and serves every upload answered 200', async () => {
    const own = await mkdtemp(join(tmpdir(), 'jan-media-embedded-kill-'));
    try {
      const first = await runEmbedded(own, undefined, { keepRunning: true });
      const key = (await readFile(join(own, 'secrets', 'service-key'), 'utf8')).trim();
      const acknowledged: string[] = [];
      const uploads = Array.from({ length: 20 }, async (_, i) => {
        const res = await fetch(`${first.baseUrl}/v1/media`, {
          method: 'POST',
          headers: { 'x-media-service-key': key, 'x-jan-user-id': 'u1', 'content-type': 'application/json' },
          body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(await pngImage(100 + i, 64)) } }),
        }).catch(() => undefined);
        if (res?.status === 200) acknowledged.push(((await res.json()) as { id: string }).id);
      });
      // Killed once some uploads were answered and others were still in flight.
      while (acknowledged.length < 3) await new Promise((r) => setTimeout(r, 5));
      first.child!.kill('SIGKILL');
      await Promise.all(uploads);
      await first.exited;

      const again = await runEmbedded(own, undefined, { keepRunning: true });
      try {
        expect(again.healthy).toBe(true);
        for (const id of acknowledged) {
          const got = await fetch(`${again.baseUrl}/v1/media/${id}`, { headers: { 'x-media-service-key': key, 'x-jan-user-id': 'u1' } });
          expect({ id, status: got.status }).toEqual({ id, status: 200 });
        }
      } finally {
        again.child!.kill('SIGTERM');
        await again.exited;
      }
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  }, 120_000);

  it('the deployed entry point exits 78 on a secret file others may read, naming it and the chmod fix; at 0600 it starts', async () => {
    const own = await mkdtemp(join(tmpdir(), 'jan-media-embedded-modes-'));
    const serviceKeyFile = join(own, 'secrets', 'service-key');
    const key = 'restored-service-key-0123456789abcdef';
    try {
      // A backup restored with a plain `cp` under umask 022: intact contents, mode 0644.
      await mkdir(join(own, 'secrets'), { recursive: true, mode: 0o700 });
      await writeFile(serviceKeyFile, key + '\n', { mode: 0o644 });
      await chmod(serviceKeyFile, 0o644);

      const refused = await runEmbedded(own);
      expect(refused.exitCode).toBe(78);
      expect(refused.stderr).toContain(serviceKeyFile);
      expect(refused.stderr).toContain(`chmod 600 ${serviceKeyFile}`);
      expect(refused.healthy).toBe(false);

      await chmod(serviceKeyFile, 0o600);
      const started = await runEmbedded(own, key);
      expect(started.healthy).toBe(true);
      // The restored key is the one in use.
      expect(started.usageStatus).toBe(200);
      expect(started.stderr).not.toContain('chmod');
      // The banner names the key by its id (never positional, never the key): what owns its uploads for nobody.
      expect(started.stdout).toContain(`service key ids: ${keyId(key, 'service-key')}\n`);
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  }, 60_000);
});

/**
 * Unmounts a test's tmpfs. The service that ran on it has exited, but the kernel may still count
 * it busy for a moment after; a lazy unmount is the last resort, so a test never leaves a mount.
 */
async function unmount(path: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      execFileSync('umount', [path], { stdio: 'pipe' });
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  execFileSync('umount', ['-l', path]);
}

/**
 * `node dist/start.js` with no environment but a data dir and a port, as the README's first command
 * runs it: until it answers `/healthz` (then asked for `/v1/usage` with `key`, and stopped) or exits.
 */
async function runEmbedded(
  dataDir: string,
  key?: string,
  options: { keepRunning?: boolean } = {},
): Promise<{
  exitCode: number | null;
  stdout: string;
  stderr: string;
  healthy: boolean;
  usageStatus?: number;
  baseUrl: string;
  /** With `keepRunning`, the running service and its exit. */
  child?: ChildProcess;
  exited: Promise<number | null>;
}> {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [join(__dirname, '../../dist/start.js')], {
    env: { PATH: process.env.PATH, MEDIA_DATA_DIR: dataDir, MEDIA_API_PORT: String(port), MEDIA_API_HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let healthy = false;
  let usageStatus: number | undefined;
  try {
    for (let i = 0; i < 300 && child.exitCode === null && child.signalCode === null; i++) {
      healthy = await fetch(`${baseUrl}/healthz`).then((r) => r.ok, () => false);
      if (healthy) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    if (healthy && key) {
      usageStatus = (await fetch(`${baseUrl}/v1/usage`, { headers: { 'x-media-service-key': key, 'x-jan-user-id': 'u1' } })).status;
    }
  } finally {
    if (!(healthy && options.keepRunning) && child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  }
  if (healthy && options.keepRunning) return { exitCode: null, stdout, stderr, healthy, baseUrl, child, exited };
  const exitCode = await exited;
  return { exitCode, stdout, stderr, healthy, usageStatus, baseUrl, exited };
}

/** `node dist/start.js` on `dataDir` and `port`, left to exit on its own (stopped after 60 s). */
async function runUntilExit(dataDir: string, port: number): Promise<{ exitCode: number | null; stderr: string }> {
  const child = spawn(process.execPath, [join(__dirname, '../../dist/start.js')], {
    env: { PATH: process.env.PATH, MEDIA_DATA_DIR: dataDir, MEDIA_API_PORT: String(port), MEDIA_API_HOST: '127.0.0.1', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const stop = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const exitCode = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  clearTimeout(stop);
  return { exitCode, stderr };
}
