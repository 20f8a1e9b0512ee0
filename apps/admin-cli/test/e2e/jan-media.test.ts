import { MediaClient, type MediaObject } from '@jan/media-client';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { CLI_MAIN, jan, janOnTerminal, runProcess, type CliResult } from '../support/cli';
import { ADMIN_KEY, freePort, postgresDsn, SERVICE_KEY, startMediaService, type MediaService } from '../support/media-service';
import { startJwtIssuer } from '../support/jwt-issuer';
import { dataUrl, pngImage, uniqueOwner } from '../support/png';

/**
 * The built `jan` binary, spawned as a process against the built service (its own process, on
 * PostgreSQL and local disk). Objects are seeded through the SDK with the service key; the CLI
 * only ever holds the admin key.
 */
describe('jan media (spawned CLI against the running service)', () => {
  let service: MediaService;
  let seed: MediaClient;
  let env: Record<string, string>;
  let counter = 0;

  beforeAll(async () => {
    service = await startMediaService();
    seed = new MediaClient({ baseURL: service.baseUrl, serviceKey: SERVICE_KEY, env: {} });
    env = { MEDIA_API_URL: service.baseUrl, MEDIA_ADMIN_KEY: ADMIN_KEY };
  });

  afterAll(async () => {
    await service?.stop();
  });

  const ingest = (owner: string, filename = 'seed.png'): Promise<MediaObject> =>
    seed.media.ingestDataUrl(dataUrl(pngImage(Date.now() % 100_000 + ++counter * 101)), { filename }, { userId: owner });

  /** Puts rows past their retention date (test fixture; the CLI itself never touches the database). */
  const ageRows = async (ids: string[]) => {
    const db = new Client({ connectionString: postgresDsn() });
    await db.connect();
    try {
      const updated = await db.query(
        `UPDATE media_api.media_objects SET retention_until = now() - interval '1 hour' WHERE id = ANY($1::varchar[])`,
        [ids],
      );
      expect(updated.rowCount).toBe(ids.length);
    } finally {
      await db.end();
    }
  };

  const json = (result: CliResult) => {
    try {
      return JSON.parse(result.stdout);
    } catch {
      throw new Error(`stdout is not JSON (exit ${result.code}):\n${result.stdout}\nstderr:\n${result.stderr}`);
    }
  };

  describe('help and usage errors', () => {
    it('prints help for every command and exits 0', async () => {
      const root = await jan(['--help'], {});
      expect(root.code).toBe(0);
      expect(root.stdout).toContain('Usage: jan');
      expect(root.stdout).toContain('Exit codes:');
      for (const command of ['describe', 'purge', 'reissue', 'ls', 'usage']) {
        const help = await jan(['media', command, '--help'], {});
        expect(help.code).toBe(0);
        expect(help.stdout).toContain(`Usage: jan media ${command}`);
        expect(help.stdout).toContain('--json');
      }
    });

    it('exits 2 for usage mistakes and a missing URL, before any request', async () => {
      const noSelector = await jan(['media', 'purge'], env);
      expect(noSelector.code).toBe(2);
      expect(noSelector.stderr).toContain('name the ids to purge');
      const badTtl = await jan(['media', 'reissue', 'jan_01hqr8v9k2x3f4g5h6j7k8m9n0', '--ttl', 'soon'], env);
      expect(badTtl.code).toBe(2);
      expect(badTtl.stderr).toContain('--ttl');
      const unknown = await jan(['media', 'frobnicate'], env);
      expect(unknown.code).toBe(2);
      const noUrl = await jan(['media', 'ls'], { MEDIA_ADMIN_KEY: ADMIN_KEY });
      expect(noUrl.code).toBe(2);
      expect(noUrl.stderr).toContain('MEDIA_API_URL');
    });
  });

  describe('credentials and failures', () => {
    it('exits 4 without a credential, with a wrong key, or with the service key instead of the admin key', async () => {
      const none = await jan(['media', 'usage', '--owner', 'x'], { MEDIA_API_URL: service.baseUrl });
      expect(none.code).toBe(4);
      expect(none.stderr).toContain('MEDIA_ADMIN_KEY');

      const wrong = await jan(['media', 'usage', '--owner', 'x', '--json'], { ...env, MEDIA_ADMIN_KEY: 'wrong-admin-key-0123456789' });
      expect(wrong.code).toBe(4);
      expect(wrong.stdout).toBe('');
      expect(JSON.parse(wrong.stderr)).toMatchObject({ code: 'unauthorized', status: 401, exit_code: 4, request_id: expect.any(String) });

      const flag = await jan(['media', 'usage', '--owner', 'x', '--admin-key', 'also-wrong-0123456789'], env);
      expect(flag.code).toBe(4);

      // The service key is a valid credential, but not an admin one.
      const serviceKey = await jan(['media', 'usage', '--owner', 'x'], { ...env, MEDIA_ADMIN_KEY: SERVICE_KEY });
      expect(serviceKey.code).toBe(4);
    });

    it("exits 4 (not 2, \"check --url\") for a valid token without the admin role; an admin's token works", async () => {
      const issuer = await startJwtIssuer();
      const withAuth = await startMediaService({ AUTH_ENABLED: 'true', AUTH_ISSUER: issuer.issuer, AUTH_JWKS_URL: issuer.jwksUrl });
      try {
        const tokenEnv = { MEDIA_API_URL: withAuth.baseUrl };
        const user = await jan(['media', 'usage', '--owner', 'x', '--token', issuer.token('alice'), '--json'], tokenEnv);
        expect(user.code).toBe(4);
        expect(JSON.parse(user.stderr)).toMatchObject({ code: 'not_admin', exit_code: 4, error: expect.stringContaining('media-admin') });

        const admin = await jan(['media', 'usage', '--owner', 'x', '--json'], { ...tokenEnv, MEDIA_ADMIN_TOKEN: issuer.token('ops', ['media-admin']) });
        expect(admin.code).toBe(0);

        const wrongUrl = await jan(['media', 'usage', '--owner', 'x', '--token', issuer.token('alice')], { MEDIA_API_URL: `${withAuth.baseUrl}/media` });
        expect(wrongUrl.code).toBe(2);
        expect(wrongUrl.stderr).toContain('check --url');
      } finally {
        await withAuth.stop();
        await issuer.stop();
      }
    });

    it('exits 2 ("check --url"), not 4, when --url names another service that also has a GET /v1/usage', async () => {
      // A sibling service (an LLM gateway, say) with the same error shape and its own usage route:
      // the admin route is unknown there, and /v1/usage answers the token with something else.
      const seen: string[] = [];
      const foreign = createServer((request, response) => {
        seen.push(`${request.method} ${request.url}`);
        response.setHeader('content-type', 'application/json');
        if (request.method === 'GET' && request.url === '/v1/usage') {
          response.end(JSON.stringify({ input_tokens: 1200, output_tokens: 300 }));
        } else {
          response.statusCode = 404;
          response.end(JSON.stringify({ error: 'route not found', code: 'route_not_found' }));
        }
      });
      await new Promise<void>((listening) => foreign.listen(0, '127.0.0.1', listening));
      try {
        const url = `http://127.0.0.1:${(foreign.address() as AddressInfo).port}`;
        const result = await jan(['media', 'usage', '--owner', 'x', '--token', 'user-jwt', '--retries', '0', '--url', url], {});
        expect(seen).toEqual(['GET /v1/admin/usage?owner=x', 'GET /v1/usage']);
        expect(result.code).toBe(2);
        expect(result.stderr).toContain('check --url');
      } finally {
        await new Promise((closed) => foreign.close(closed));
      }
    });

    it('exits 5 when the service cannot be reached', async () => {
      const closed = await freePort();
      const result = await jan(['media', 'ls', '--retries', '0', '--url', `http://127.0.0.1:${closed}`], env);
      expect(result.code).toBe(5);
      expect(result.stderr).toMatch(/^error: Connection error/);
    });
  });

  describe('describe', () => {
    it('shows owner, size, type, hashes, storage location, status, retention, pin and audit events', async () => {
      const owner = uniqueOwner();
      const object = await ingest(owner, 'describe-me.png');

      const human = await jan(['media', 'describe', object.id], env);
      expect(human.code).toBe(0);
      expect(human.stderr).toBe('');
      const out = human.stdout;
      expect(out).toMatch(new RegExp(`^id\\s+${object.id}$`, 'm'));
      expect(out).toMatch(new RegExp(`^owner\\s+${owner}$`, 'm'));
      expect(out).toMatch(/^type\s+image\/png$/m);
      expect(out).toMatch(new RegExp(`^size\\s+.*\\(${object.bytes} bytes\\)$`, 'm'));
      expect(out).toMatch(new RegExp(`^sha256\\s+${object.sha256}$`, 'm'));
      expect(out).toMatch(/^storage provider\s+local$/m);
      expect(out).toMatch(new RegExp(`^storage key\\s+\\S*${object.id}\\S*$`, 'm'));
      expect(out).toMatch(/^status\s+ready$/m);
      expect(out).toMatch(/^pinned\s+no$/m);
      expect(out).toMatch(/^retention until\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/m);
      expect(out).toMatch(/^filename\s+describe-me\.png$/m);
      expect(out).toContain('Recent audit events (newest first):');
      expect(out).toMatch(/^TIME\s+ACTOR\s+ACTION\s+OUTCOME\s+REASON\s+REQUEST$/m);
      expect(out).toMatch(/media\.ingest\s+success/);

      const machine = await jan(['media', 'describe', object.id, '--json'], env);
      expect(machine.code).toBe(0);
      const described = json(machine);
      expect(described).toMatchObject({
        id: object.id,
        owner,
        mime: 'image/png',
        bytes: object.bytes,
        sha256: object.sha256,
        storage_provider: 'local',
        status: 'ready',
        pinned: false,
      });
      expect(described.storage_key).toContain(object.id);
      expect(described.events.map((e: { action: string }) => e.action)).toContain('media.ingest');
    });

    it('shows a pin', async () => {
      const owner = uniqueOwner();
      const object = await ingest(owner);
      await seed.media.pin(object.id, { userId: owner });
      const result = await jan(['media', 'describe', object.id], env);
      expect(result.stdout).toMatch(/^pinned\s+yes$/m);
      expect(result.stdout).toMatch(/^retention until\s+- \(pinned: kept\)$/m);
    });

    it('exits 3 for an unknown or malformed id, naming the request id', async () => {
      for (const id of ['jan_01hqr8v9k2x3f4g5h6j7k8m9n0', 'jan_nonexistent123']) {
        const result = await jan(['media', 'describe', id], env);
        expect(result.code).toBe(3);
        expect(result.stdout).toBe('');
        expect(result.stderr).toMatch(/^error: media not found \(request id \S+\)\n$/);
      }
      const machine = await jan(['--json', 'media', 'describe', 'jan_01hqr8v9k2x3f4g5h6j7k8m9n0'], env);
      expect(machine.code).toBe(3);
      expect(JSON.parse(machine.stderr)).toMatchObject({ code: 'media_not_found', status: 404, exit_code: 3 });
    });
  });

  describe('ls and usage', () => {
    it('pages through an owner with --limit and --cursor, or everything with --all', async () => {
      const owner = uniqueOwner();
      const seeded = [await ingest(owner), await ingest(owner), await ingest(owner)].map((o) => o.id).sort();

      const first = await jan(['media', 'ls', '--owner', owner, '--limit', '2'], env);
      expect(first.code).toBe(0);
      const lines = first.stdout.trimEnd().split('\n');
      expect(lines[0]).toMatch(/^ID\s+OWNER\s+TYPE\s+SIZE\s+STATUS\s+PINNED\s+CREATED\s+RETENTION$/);
      expect(lines.slice(1).map((line) => line.split(/\s+/)[0])).toEqual(seeded.slice(0, 2));
      expect(lines[1]).toContain(owner);
      const cursor = /--cursor (\S+)/.exec(first.stderr)?.[1];
      expect(cursor).toBeDefined();

      const second = json(await jan(['media', 'ls', '--owner', owner, '--limit', '2', '--cursor', cursor!, '--json'], env));
      expect(second.items.map((i: { id: string }) => i.id)).toEqual(seeded.slice(2));
      expect(second.next_cursor).toBeNull();

      const all = await jan(['media', 'ls', '--owner', owner, '--limit', '1', '--all', '--json'], env);
      expect(all.code).toBe(0);
      expect(all.stderr).toBe('');
      const everything = json(all);
      expect(everything.items.map((i: { id: string }) => i.id)).toEqual(seeded);
      expect(everything.items.every((i: { owner: string; status: string }) => i.owner === owner && i.status === 'ready')).toBe(true);

      // The hint is a command line: run as printed (with `jan` the built binary), it prints the next page.
      const shellOwner = `${uniqueOwner()};o'k$(x)&"y"`;
      const shellSeeded = [await ingest(shellOwner), await ingest(shellOwner), await ingest(shellOwner)].map((o) => o.id).sort();
      const page1 = await jan(['media', 'ls', '--owner', shellOwner, '--limit', '2'], env);
      const next = /^more objects: (.*)  \(or --all\)$/m.exec(page1.stderr)?.[1];
      expect(next).toMatch(/^jan media ls --owner '.*' --limit 2 --cursor \S+$/);
      const page2 = await runProcess('bash', ['-c', `node="$0"; cli="$1"; jan() { "$node" "$cli" "$@"; }; ${next!} --json`, process.execPath, CLI_MAIN], env);
      expect(page2.code).toBe(0);
      expect(json(page2).items.map((i: { id: string }) => i.id)).toEqual(shellSeeded.slice(2));

      const nobody = await jan(['media', 'ls', '--owner', uniqueOwner('nobody')], env);
      expect(nobody.code).toBe(0);
      expect(nobody.stdout).toBe('(no objects)\n');
    });

    it('ends quietly with 141 (as on SIGPIPE) when the reader of its output goes away, as with `| head`', async () => {
      const owner = uniqueOwner();
      await ingest(owner);
      for (const args of [['media', 'ls', '--owner', owner], ['media', 'ls', '--owner', owner, '--all', '--json']]) {
        const child = spawn(process.execPath, [CLI_MAIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
        // The reader quits before the listing arrives: the CLI's write finds the pipe closed (EPIPE).
        child.stdout.destroy();
        let stderr = '';
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
        expect(stderr).toBe('');
        expect(code).toBe(141);
      }
      // Through a real shell pipeline: head reads the first line and quits; no stack trace reaches the terminal.
      const piped = await runProcess('bash', ['-c', `set -o pipefail; "$0" "$1" media ls --owner "$2" --limit 1 --all | head -c 0; echo "status $?" >&2`, process.execPath, CLI_MAIN, owner], env);
      expect(piped.stderr).toMatch(/^status (0|141)\n$/);
    });

    it("reports an owner's usage as a table or JSON", async () => {
      const owner = uniqueOwner();
      const objects = [await ingest(owner), await ingest(owner)];
      const bytes = objects.reduce((sum, o) => sum + o.bytes, 0);

      const machine = await jan(['media', 'usage', '--owner', owner, '--json'], env);
      expect(machine.code).toBe(0);
      expect(json(machine)).toEqual({ owner, objects: 2, bytes, quota_objects: null, quota_bytes: null });

      const human = await jan(['media', 'usage', '--owner', owner], env);
      expect(human.stdout).toMatch(new RegExp(`^owner\\s+${owner}$`, 'm'));
      expect(human.stdout).toMatch(/^objects\s+2 of unlimited$/m);
      expect(human.stdout).toMatch(new RegExp(`^bytes\\s+.*\\(${bytes} bytes\\) of unlimited$`, 'm'));

      const missing = await jan(['media', 'usage'], env);
      expect(missing.code).toBe(2);
    });
  });

  describe('reissue', () => {
    it('signs a fresh URL with the asked lifetime that serves the bytes without credentials', async () => {
      const owner = uniqueOwner();
      const bytes = pngImage(424242);
      const object = await seed.media.ingestDataUrl(dataUrl(bytes), {}, { userId: owner });

      const before = Date.now();
      const result = await jan(['media', 'reissue', object.id, '--ttl', '120', '--json'], env);
      expect(result.code).toBe(0);
      const reissued = json(result);
      expect(reissued).toMatchObject({ id: object.id, url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:/) });
      const expiresAt = Date.parse(reissued.expires_at);
      expect(expiresAt).toBeGreaterThanOrEqual(before + 110_000);
      expect(expiresAt).toBeLessThanOrEqual(Date.now() + 130_000);
      const served = await fetch(reissued.url);
      expect(served.status).toBe(200);
      expect(Buffer.from(await served.arrayBuffer())).toEqual(bytes);

      const human = await jan(['media', 'reissue', object.id], env);
      expect(human.code).toBe(0);
      expect(human.stdout).toMatch(/^url\s+http:\/\/127\.0\.0\.1:\d+\/\S+$/m);
      expect(human.stdout).toMatch(/^expires\s+\d{4}-/m);

      const audit = json(await jan(['media', 'describe', object.id, '--json'], env));
      expect(audit.events.map((e: { action: string }) => e.action)).toContain('media.reissue');
    });

    it('exits 3 for an unknown id', async () => {
      const result = await jan(['media', 'reissue', 'jan_01hqr8v9k2x3f4g5h6j7k8m9n0', '--ttl', '60'], env);
      expect(result.code).toBe(3);
    });
  });

  describe('purge', () => {
    it('is a dry run without --yes when nobody can be asked; --yes deletes', async () => {
      const owner = uniqueOwner();
      const object = await ingest(owner);

      const dry = await jan(['media', 'purge', object.id], env);
      expect(dry.code).toBe(0);
      expect(dry.stdout).toBe(`would delete 1 object:\n  ${object.id}\n`);
      expect(dry.stderr).toContain('dry run: nothing was deleted; add --yes to delete');
      expect((await jan(['media', 'describe', object.id], env)).code).toBe(0);

      const real = await jan(['media', 'purge', object.id, '--yes'], env);
      expect(real.code).toBe(0);
      expect(real.stdout).toBe('deleted 1 object\n');
      expect(real.stderr).toBe('');
      expect((await jan(['media', 'describe', object.id], env)).code).toBe(3);
      await expect(seed.media.metadata(object.id, { userId: owner })).rejects.toMatchObject({ status: 404 });
    });

    it('purges the named ids that exist and exits 3 naming the rest', async () => {
      const owner = uniqueOwner();
      const object = await ingest(owner);
      const missing = 'jan_01hqr8v9k2x3f4g5h6j7k8m9n0';
      const result = await jan(['media', 'purge', object.id.toUpperCase(), missing, '--yes', '--json'], env);
      expect(result.code).toBe(3);
      expect(json(result)).toEqual({ dry_run: false, count: 1, purged: [object.id], not_found: [missing] });
      expect(JSON.parse(result.stderr)).toMatchObject({ code: 'media_not_found', exit_code: 3 });
      expect((await jan(['media', 'describe', object.id], env)).code).toBe(3);
    });

    it('reports the objects the storage refused to delete, deletes the rest, and exits 5', async () => {
      const owner = uniqueOwner();
      const [stuck, fine] = [await ingest(owner), await ingest(owner)];
      // A non-empty directory where the object's file was: the local backend cannot remove it.
      const path = join(service.dataDir, 'objects', 'images', `${stuck.id}.png`);
      await rm(path);
      await mkdir(join(path, 'keep'), { recursive: true });
      try {
        const result = await jan(['media', 'purge', '--owner', owner, '--yes', '--json'], env);
        expect(result.code).toBe(5);
        expect(json(result)).toEqual({ dry_run: false, count: 1, purged: [fine.id], not_found: [], failed: [{ id: stuck.id, code: 'storage_unavailable' }] });
        expect(JSON.parse(result.stderr)).toMatchObject({ code: 'purge_incomplete', exit_code: 5 });
        expect((await jan(['media', 'describe', fine.id], env)).code).toBe(3);
        // The lingering object's describe says why: the failed purge is in its audit events.
        let events: { action: string; outcome: string; reason_code: string | null }[] = [];
        for (let i = 0; i < 20 && !events.some((e) => e.outcome === 'failure'); i++) {
          events = json(await jan(['media', 'describe', stuck.id, '--json'], env)).events;
          if (!events.some((e) => e.outcome === 'failure')) await new Promise((r) => setTimeout(r, 100));
        }
        expect(events).toContainEqual(expect.objectContaining({ action: 'media.purge', outcome: 'failure', reason_code: 'storage_unavailable' }));
        const lingering = await jan(['media', 'describe', stuck.id], env);
        expect(lingering.stdout).toMatch(/^being deleted since\s+\d{4}-/m);
      } finally {
        await rm(path, { recursive: true, force: true });
      }
    });

    it('purges everything of one owner in batches, leaving other owners alone', async () => {
      const owner = uniqueOwner();
      const bystander = uniqueOwner('bystander');
      const ids = [];
      for (let i = 0; i < 5; i++) ids.push((await ingest(owner)).id);
      const kept = await ingest(bystander);

      const plan = json(await jan(['media', 'purge', '--owner', owner, '--json'], env));
      expect(plan).toEqual({ dry_run: true, count: 5, purged: ids.sort(), not_found: [] });

      const result = await jan(['media', 'purge', '--owner', owner, '--yes', '--batch-size', '2'], env);
      expect(result.code).toBe(0);
      expect(result.stdout).toBe('deleted 5 objects\n');
      // No terminal: no progress bar redraws in the output.
      expect(result.stderr).toBe('');
      expect(json(await jan(['media', 'ls', '--owner', owner, '--json'], env)).items).toEqual([]);
      expect(json(await jan(['media', 'usage', '--owner', owner, '--json'], env))).toMatchObject({ objects: 0, bytes: 0 });
      expect((await jan(['media', 'describe', kept.id], env)).code).toBe(0);
    });

    /** `purge --owner … --yes --batch-size 1 --json`, spawned; `act` runs once the first objects are gone. */
    const purgeUntil = async (
      owner: string,
      seeded: number,
      act: (child: ReturnType<typeof spawn>) => Promise<void> | void,
      purgeEnv: Record<string, string> = env,
    ) => {
      const db = new Client({ connectionString: postgresDsn() });
      await db.connect();
      try {
        const left = async () =>
          Number((await db.query(`SELECT count(*) FROM media_api.media_objects WHERE created_by = $1`, [owner])).rows[0].count);
        const child = spawn(process.execPath, [CLI_MAIN, 'media', 'purge', '--owner', owner, '--yes', '--batch-size', '1', '--retries', '0', '--json'], {
          env: { PATH: process.env.PATH ?? '', ...purgeEnv },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
        while ((await left()) === seeded) await new Promise((r) => setTimeout(r, 20));
        await act(child);
        const code = await exited;
        const remaining: string[] = (await db.query(`SELECT id FROM media_api.media_objects WHERE created_by = $1`, [owner])).rows.map((r) => r.id);
        return { code, stdout, stderr, remaining };
      } finally {
        await db.end();
      }
    };

    it.each([
      ['SIGINT', 130],
      ['SIGTERM', 143],
      // The terminal of `jan … > log 2>&1 &` was closed: the shell hangs up its jobs.
      ['SIGHUP', 129],
    ] as const)('on %s reports exactly the objects it deleted, as JSON, and exits %d', async (signal, exitCode) => {
      const owner = uniqueOwner();
      const ids: string[] = [];
      for (let i = 0; i < 40; i++) ids.push((await ingest(owner)).id);
      const result = await purgeUntil(owner, ids.length, (child) => {
        child.kill(signal);
      });
      expect(result.code).toBe(exitCode);

      const report = json(result);
      expect(report).toMatchObject({ dry_run: false, interrupted: true, not_found: [] });
      expect(report.count).toBe(report.purged.length);
      expect(report.count).toBeLessThan(ids.length);
      expect(JSON.parse(result.stderr)).toMatchObject({ code: 'interrupted', exit_code: exitCode });
      // What it says it deleted is gone, and everything else is still there.
      expect([...result.remaining, ...report.purged].sort()).toEqual([...ids].sort());
      const listed = json(await jan(['media', 'ls', '--owner', owner, '--json'], env)).items.map((i: { id: string }) => i.id);
      expect(listed.sort()).toEqual([...result.remaining].sort());
    });

    it('when its terminal is closed, stops after the batch in flight and leaves the report in the redirected stdout', async () => {
      const owner = uniqueOwner();
      const ids: string[] = [];
      for (let i = 0; i < 40; i++) ids.push((await ingest(owner)).id);
      const dir = await mkdtemp(join(tmpdir(), 'jan-hangup-'));
      const log = join(dir, 'purge.log');
      const db = new Client({ connectionString: postgresDsn() });
      await db.connect();
      try {
        const left = async (): Promise<string[]> =>
          (await db.query(`SELECT id FROM media_api.media_objects WHERE created_by = $1`, [owner])).rows.map((r) => r.id);
        // script(1) gives the CLI a real terminal (stderr, with its progress bar, stays on it;
        // stdout goes to a file, as with `> log`). Killing script closes the terminal: the kernel
        // hangs it up, the CLI gets SIGHUP, and its writes to the terminal fail with EIO from then on.
        const quote = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;
        const command = [process.execPath, CLI_MAIN, 'media', 'purge', '--owner', owner, '--yes', '--batch-size', '1', '--retries', '0'].map(quote).join(' ');
        const terminal = spawn('script', ['-qfc', `exec ${command} > ${quote(log)}`, '/dev/null'], {
          env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', TERM: 'xterm', ...env },
          stdio: ['pipe', 'ignore', 'ignore'],
        });
        const closed = new Promise((resolve) => terminal.on('close', resolve));
        while ((await left()).length === ids.length) await new Promise((r) => setTimeout(r, 20));
        terminal.kill('SIGKILL');
        await closed;
        let report = '';
        for (let waited = 0; waited < 15_000 && !report.endsWith('\n'); waited += 50) {
          await new Promise((r) => setTimeout(r, 50));
          report = await readFile(log, 'utf8');
        }
        const stopped = /^deleted (\d+) objects?, then stopped \(hung up \(SIGHUP\)\)\n$/.exec(report);
        expect(stopped).not.toBeNull();
        const remaining = await left();
        // It stopped (objects are left) and reported exactly how many it deleted.
        expect(remaining.length).toBeGreaterThan(0);
        expect(Number(stopped![1])).toBe(ids.length - remaining.length);
        // Nothing deletes anything after the report.
        await new Promise((r) => setTimeout(r, 300));
        expect((await left()).length).toBe(remaining.length);
      } finally {
        await db.end();
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('when the service goes away mid-purge, --json still reports what was deleted before the failure (exit 5)', async () => {
      const own = await startMediaService();
      try {
        const owner = uniqueOwner();
        const seeder = new MediaClient({ baseURL: own.baseUrl, serviceKey: SERVICE_KEY, env: {} });
        const ids: string[] = [];
        for (let i = 0; i < 40; i++) ids.push((await seeder.media.ingestDataUrl(dataUrl(pngImage(Date.now() % 100_000 + ++counter * 101)), {}, { userId: owner })).id);
        const result = await purgeUntil(owner, ids.length, () => own.stop(), { ...env, MEDIA_API_URL: own.baseUrl });
        expect(result.code).toBe(5);

        const report = json(result);
        expect(report).toMatchObject({ dry_run: false, aborted: true, not_found: [] });
        expect(report.count).toBe(report.purged.length);
        expect(report.count).toBeGreaterThan(0);
        expect(JSON.parse(result.stderr)).toMatchObject({ code: 'connection_error', exit_code: 5 });
        // Everything reported is gone; of the rest, only the batch whose answer was lost may be.
        expect(result.remaining.filter((id) => report.purged.includes(id))).toEqual([]);
        const unreported = ids.filter((id) => !report.purged.includes(id) && !result.remaining.includes(id));
        expect(unreported.length).toBeLessThanOrEqual(1);
      } finally {
        await own.stop();
      }
    });

    it('when the reader of stdout has gone (`| head -c 0`), still reports on stderr what it deleted, and exits 141', async () => {
      for (const format of [[], ['--json']]) {
        const owner = uniqueOwner();
        const ids: string[] = [];
        for (let i = 0; i < 3; i++) ids.push((await ingest(owner)).id);
        // A real shell pipeline: the reader quits at once, so the report written to stdout meets a closed pipe (EPIPE).
        const piped = await runProcess(
          'bash',
          ['-c', `set -o pipefail; "$0" "$1" media purge --owner "$2" --yes --batch-size 1 ${format.join(' ')} | head -c 0; echo "status $?" >&2`, process.execPath, CLI_MAIN, owner],
          env,
        );
        const lines = piped.stderr.trimEnd().split('\n');
        expect(lines.pop()).toBe('status 141');
        if (format.length) {
          expect(lines).toHaveLength(1);
          expect(JSON.parse(lines[0]!)).toMatchObject({
            code: 'broken_pipe',
            exit_code: 141,
            report: { dry_run: false, count: 3, purged: [...ids].sort(), not_found: [] },
          });
        } else {
          expect(lines).toEqual(['deleted 3 objects', 'error: the reader of stdout went away: the report above is on stderr instead']);
        }
        expect(json(await jan(['media', 'ls', '--owner', owner, '--json'], env)).items).toEqual([]);
      }
    });

    it.each(['SIGHUP', 'SIGINT', 'SIGTERM'] as const)('%s during the dry run ends the CLI at once, before any deletion', async (signal) => {
      // A service that takes the dry run and never answers it.
      const requests: string[] = [];
      const server = createServer((request) => requests.push(`${request.method} ${request.url}`));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
        const child = spawn(process.execPath, [CLI_MAIN, 'media', 'purge', '--owner', 'someone', '--yes', '--url', url], {
          env: { PATH: process.env.PATH ?? '', MEDIA_ADMIN_KEY: ADMIN_KEY },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let output = '';
        child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
        child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
        const ended = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('close', (code, sig) => resolve([code, sig])));
        while (requests.length === 0) await new Promise((r) => setTimeout(r, 20));
        child.kill(signal);
        // Ended by the signal itself: the shell reports 128 + its number (129, 130, 143).
        expect(await ended).toEqual([null, signal]);
        expect(output).toBe('');
        expect(requests).toEqual(['POST /v1/admin/media/purge']);
      } finally {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
    });

    it('purges only expired, unpinned objects with --expired', async () => {
      const owner = uniqueOwner();
      const fresh = await ingest(owner);
      const pinned = await ingest(owner);
      await seed.media.pin(pinned.id, { userId: owner });
      const expired = [(await ingest(owner)).id, (await ingest(owner)).id].sort();
      // Nothing in the service makes retention shorter than a day, so the fixture moves the
      // clock for these rows instead: past retention, as the sweeper would find them.
      await ageRows([...expired, pinned.id]);

      const plan = await jan(['media', 'purge', '--expired', '--owner', owner, '--json'], env);
      expect(plan.code).toBe(0);
      expect(json(plan)).toEqual({ dry_run: true, count: 2, purged: expired, not_found: [] });

      const result = await jan(['media', 'purge', '--expired', '--owner', owner, '--yes', '--json'], env);
      expect(result.code).toBe(0);
      expect(json(result)).toEqual({ dry_run: false, count: 2, purged: expired, not_found: [] });
      const left = json(await jan(['media', 'ls', '--owner', owner, '--json'], env));
      expect(left.items.map((i: { id: string }) => i.id)).toEqual([fresh.id, pinned.id].sort());
    });
  });

  describe('on a terminal', () => {
    it('asks before deleting: "n" changes nothing (exit 6), "y" deletes with a progress bar', async () => {
      const owner = uniqueOwner();
      const ids = [];
      for (let i = 0; i < 3; i++) ids.push((await ingest(owner)).id);

      const declined = await janOnTerminal(['media', 'purge', '--owner', owner], env, 'n');
      expect(declined.prompted).toBe(true);
      expect(declined.code).toBe(6);
      expect(declined.stdout).toContain('would delete 3 objects:');
      expect(declined.stdout).toContain('Delete 3 objects? This cannot be undone. [y/N]');
      expect(declined.stdout).toContain('error: cancelled: nothing was deleted');
      expect(json(await jan(['media', 'ls', '--owner', owner, '--json'], env)).items).toHaveLength(3);

      const accepted = await janOnTerminal(['media', 'purge', '--owner', owner, '--batch-size', '1'], env, 'y');
      expect(accepted.prompted).toBe(true);
      expect(accepted.code).toBe(0);
      expect(accepted.stdout).toMatch(/purging \[[^\]]*\] 3\/3/);
      expect(accepted.stdout).toContain('deleted 3 objects');
      expect(json(await jan(['media', 'ls', '--owner', owner, '--json'], env)).items).toEqual([]);
    });

    it('takes Ctrl-C or Ctrl-D at the prompt for "no": nothing deleted, exit 6', async () => {
      const owner = uniqueOwner();
      const object = await ingest(owner);
      for (const key of ['\x03', '\x04']) {
        const result = await janOnTerminal(['media', 'purge', object.id], env, key);
        expect(result.prompted).toBe(true);
        expect(result.code).toBe(6);
        expect(result.stdout).toContain('error: cancelled: nothing was deleted');
        expect((await jan(['media', 'describe', object.id], env)).code).toBe(0);
      }
    });

    it.each([
      ['SIGHUP', 129],
      ['SIGINT', 130],
      ['SIGTERM', 143],
    ] as const)('on %s at the confirmation prompt ends at once (status %d) and deletes nothing', async (signal, status) => {
      const owner = uniqueOwner();
      const ids = [(await ingest(owner)).id, (await ingest(owner)).id];
      // The shell on the terminal prints its pid and the CLI's status; the CLI is its only child.
      const command = `echo "shell $$"; '${process.execPath}' '${CLI_MAIN}' media purge --owner '${owner}'; echo "status $?"`;
      const terminal = spawn('script', ['-qec', command, '/dev/null'], {
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', TERM: 'xterm', SHELL: '/bin/sh', ...env },
        stdio: ['pipe', 'pipe', 'ignore'],
      });
      let output = '';
      terminal.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
      const closed = new Promise((resolve) => terminal.on('close', resolve));
      while (!output.includes('[y/N]')) await new Promise((r) => setTimeout(r, 20));
      const shell = /shell (\d+)/.exec(output)![1]!;
      const cli = Number((await runProcess('pgrep', ['-P', shell], {})).stdout.trim());
      process.kill(cli, signal);
      await closed;
      expect(output).toContain(`status ${status}`);
      expect(output).not.toContain('deleted');
      const left = json(await jan(['media', 'ls', '--owner', owner, '--json'], env)).items.map((i: { id: string }) => i.id);
      expect(left.sort()).toEqual(ids.sort());
    });

    it('on Ctrl-C during the deletion stops after the batch in flight, gives the cursor back and says what was deleted', async () => {
      const owner = uniqueOwner();
      for (let i = 0; i < 40; i++) await ingest(owner);

      const result = await janOnTerminal(['media', 'purge', '--owner', owner, '--yes', '--batch-size', '1'], env, 'n', {
        after: 'purging [',
        type: '\x03',
      });
      expect(result.code).toBe(130);
      const reported = Number(/deleted (\d+) objects?, then stopped \(interrupted\)/.exec(result.stdout)?.[1]);
      expect(reported).toBeGreaterThan(0);
      expect(reported).toBeLessThan(40);
      expect(result.stdout).toContain(`error: interrupted: deleted ${reported} object`);
      // cli-progress hid the cursor when it started; it is shown again.
      expect(result.stdout.lastIndexOf('\u001b[?25h')).toBeGreaterThan(result.stdout.lastIndexOf('\u001b[?25l'));
      expect(json(await jan(['media', 'ls', '--owner', owner, '--json'], env)).items).toHaveLength(40 - reported);
    });

    it('does not ask with --yes, and never draws a bar or asks with --json', async () => {
      const owner = uniqueOwner();
      const ids = [(await ingest(owner)).id, (await ingest(owner)).id].sort();
      const machine = await janOnTerminal(['media', 'purge', '--owner', owner, '--json'], env, 'y');
      expect(machine.prompted).toBe(false);
      expect(machine.code).toBe(0);
      expect(machine.stdout).not.toContain('purging [');
      expect(JSON.parse(machine.stdout.replace(/\r\n/g, '\n'))).toEqual({ dry_run: true, count: 2, purged: ids, not_found: [] });

      const scripted = await janOnTerminal(['media', 'purge', '--owner', owner, '--yes'], env, 'n');
      expect(scripted.prompted).toBe(false);
      expect(scripted.code).toBe(0);
      expect(scripted.stdout).toContain('deleted 2 objects');
    });
  });

  describe('installed in the workspace', () => {
    it('runs as `pnpm jan media …` from the repository root, keeping the exit code', async () => {
      const owner = uniqueOwner();
      const object = await ingest(owner);
      const ok = await runProcess('pnpm', ['--silent', 'jan', 'media', 'describe', object.id, '--json'], env);
      expect(ok.code).toBe(0);
      expect(json(ok)).toMatchObject({ id: object.id, owner });
      const notFound = await runProcess('pnpm', ['--silent', 'jan', 'media', 'describe', 'jan_01hqr8v9k2x3f4g5h6j7k8m9n0'], env);
      expect(notFound.code).toBe(3);
    });
  });
});
