import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * The built service, started as its own process: the CLI meets it over HTTP exactly as on an
 * operator's laptop. (Importing the service's test harness would break the rule that nothing
 * under apps/admin-cli imports apps/media-api.)
 */
/** The service's production entry point (its bundle, run with V8's code cache). */
export const SERVICE_MAIN = resolve(__dirname, '../../../media-api/dist/start.js');
export const SERVICE_KEY = 'cli-e2e-service-key-0123456789abcdef';
export const ADMIN_KEY = 'cli-e2e-admin-key-0123456789abcdef';
const SIGNING_KEYS = 'clie2e:cli-e2e-signing-secret-0123456789abcdef0123456789';

export interface MediaService {
  baseUrl: string;
  /** Its MEDIA_DATA_DIR: local storage keeps objects under `objects/images/`. */
  dataDir: string;
  stop(): Promise<void>;
}

export function postgresDsn(): string {
  const dsn = process.env.TEST_POSTGRES_DSN;
  if (!dsn) throw new Error('TEST_POSTGRES_DSN is not set: run the suite with `pnpm test` (scripts/test.mjs starts PostgreSQL)');
  return dsn;
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** Starts `node apps/media-api/dist/start.js` on a free loopback port and waits for /healthz. */
export async function startMediaService(env: Record<string, string> = {}): Promise<MediaService> {
  if (!existsSync(SERVICE_MAIN)) {
    throw new Error(`${SERVICE_MAIN} is missing: build first (pnpm turbo run build --filter=@jan/media-api...)`);
  }
  const dataDir = await mkdtemp(join(tmpdir(), 'jan-cli-e2e-'));
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [SERVICE_MAIN], {
    env: {
      PATH: process.env.PATH,
      MEDIA_API_PORT: String(port),
      MEDIA_API_HOST: '127.0.0.1',
      MEDIA_PUBLIC_URL: baseUrl,
      MEDIA_DATA_DIR: dataDir,
      DB_POSTGRESQL_WRITE_DSN: postgresDsn(),
      MEDIA_SERVICE_KEY: SERVICE_KEY,
      MEDIA_ADMIN_KEY: ADMIN_KEY,
      MEDIA_SIGNING_KEYS: SIGNING_KEYS,
      MEDIA_RETENTION_SWEEP_INTERVAL: '0',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  try {
    await waitForHealth(baseUrl, child, () => output);
  } catch (error) {
    await stopProcess(child);
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    baseUrl,
    dataDir,
    async stop() {
      await stopProcess(child);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

async function waitForHealth(baseUrl: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`media service exited with ${child.exitCode}:\n${output()}`);
    try {
      const response = await fetch(`${baseUrl}/healthz`);
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`media service did not become healthy within 30 s:\n${output()}`);
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolveStop) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolveStop();
    });
    child.kill('SIGTERM');
  });
}
