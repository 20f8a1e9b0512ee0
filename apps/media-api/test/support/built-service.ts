import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SERVICE_KEY, SIGNING_KEYS, freePort, postgresDsn } from './test-app';

/** The production entry point: the bundle of the app, run with V8's code cache (src/start.ts). */
const START = join(__dirname, '../../dist/start.js');

export interface BuiltService {
  child: ChildProcess;
  baseUrl: string;
  /** SIGTERM (a graceful stop), then the data dir goes. */
  stop(): Promise<void>;
}

/**
 * The built service as deployed (`node dist/start.js`, which runs the bundle) on PostgreSQL and a throwaway data dir,
 * with `env` added; resolves once `/healthz` answers. `stdout` is piped when `pipeStdout` is set; `nodeArgs` go
 * before the script, and `start` names another copy of dist/start.js (a production install's), run in `cwd`.
 */
export async function startBuiltService(
  env: Record<string, string>,
  options: { pipeStdout?: boolean; nodeArgs?: string[]; start?: string; cwd?: string } = {},
): Promise<BuiltService> {
  const dataDir = await mkdtemp(join(tmpdir(), 'jan-media-built-'));
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), options.start ?? START], {
    env: {
      PATH: process.env.PATH,
      MEDIA_API_PORT: String(port),
      MEDIA_API_HOST: '127.0.0.1',
      MEDIA_PUBLIC_URL: baseUrl,
      MEDIA_DATA_DIR: dataDir,
      DB_POSTGRESQL_WRITE_DSN: postgresDsn(),
      MEDIA_SERVICE_KEY: SERVICE_KEY,
      MEDIA_SIGNING_KEYS: SIGNING_KEYS,
      MEDIA_RETENTION_SWEEP_INTERVAL: '0',
      ...env,
    },
    stdio: ['ignore', options.pipeStdout ? 'pipe' : 'ignore', 'ignore'],
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dataDir, { recursive: true, force: true });
  };
  for (let i = 0; i < 150; i++) {
    if (await fetch(`${baseUrl}/healthz`).then((r) => r.ok, () => false)) return { child, baseUrl, stop };
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error('the built service did not start');
}
