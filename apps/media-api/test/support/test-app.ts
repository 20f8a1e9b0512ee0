import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { keyId } from '../../src/auth/key-ring';
import { createApp, type RunningApp } from '../../src/bootstrap';

export const SERVICE_KEY = 'e2e-service-key-0123456789abcdef';
/** The id SERVICE_KEY is known by: audit actor `service:<id>`, owner of what it uploads for nobody. */
export const SERVICE_KEY_ID = keyId(SERVICE_KEY, 'service-key');
export const SIGNING_KEYS = 'e2e1:e2e-signing-secret-0123456789abcdef0123456789';

export interface TestApp {
  running: RunningApp;
  baseUrl: string;
  dataDir: string;
  /** fetch against the app with the service key (and optionally a user) set. */
  call(path: string, init?: RequestInit & { user?: string; key?: string | null }): Promise<Response>;
  close(): Promise<void>;
}

/** The PostgreSQL the e2e tier runs on; started by scripts/test.mjs. */
export function postgresDsn(): string {
  const dsn = process.env.TEST_POSTGRES_DSN;
  if (!dsn) throw new Error('TEST_POSTGRES_DSN is not set: run the suite with `pnpm test` (scripts/test.mjs starts PostgreSQL)');
  return dsn;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Boots the real app on loopback. `engine: 'postgres'` (default) uses TEST_POSTGRES_DSN;
 * `engine: 'embedded'` uses no DSN at all, as the README's first command does. `ownDatabase`
 * gives it a database of its own on that server, dropped on close: for tests that act on every
 * row (a retention sweep), which in the shared one could take rows another file still reads.
 */
export async function startTestApp(
  options: { env?: Record<string, string>; engine?: 'postgres' | 'embedded'; dataDir?: string; ownDatabase?: boolean } = {},
): Promise<TestApp> {
  const scratch = options.ownDatabase ? await createScratchDatabase() : null;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'jan-media-e2e-')));
  const port = await freePort();
  const env: Record<string, string | undefined> = {
    MEDIA_API_PORT: String(port),
    MEDIA_API_HOST: '127.0.0.1',
    MEDIA_PUBLIC_URL: `http://127.0.0.1:${port}`,
    MEDIA_DATA_DIR: dataDir,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    MEDIA_RETENTION_SWEEP_INTERVAL: '0',
    MEDIA_SHUTDOWN_GRACE: '1s',
    ...(options.engine === 'embedded'
      ? {}
      : { DB_POSTGRESQL_WRITE_DSN: scratch?.dsn ?? postgresDsn(), MEDIA_SERVICE_KEY: SERVICE_KEY, MEDIA_SIGNING_KEYS: SIGNING_KEYS }),
    ...options.env,
  };
  const running = await createApp(env);
  // Once only, whoever calls it first: a test that shuts the app down itself (as SIGTERM does)
  // still gets its data dir and database removed by close().
  const closeApp = running.close.bind(running);
  let closed: Promise<void> | undefined;
  running.close = () => (closed ??= closeApp());
  await running.app.listen({ port, host: '127.0.0.1' });
  const baseUrl = `http://127.0.0.1:${port}`;
  const key = running.config.serviceKeys[0];
  return {
    running,
    baseUrl,
    dataDir,
    call(path, init = {}) {
      const headers = new Headers(init.headers);
      if (init.key !== null) headers.set('x-media-service-key', init.key ?? key);
      if (init.user) headers.set('x-jan-user-id', init.user);
      if (typeof init.body === 'string' && !headers.has('content-type')) headers.set('content-type', 'application/json');
      return fetch(baseUrl + path, { ...init, headers });
    },
    async close() {
      try {
        await running.close();
      } finally {
        if (!options.dataDir) await rm(dataDir, { recursive: true, force: true });
        await scratch?.drop();
      }
    },
  };
}

/** A database of its own on the test server; `drop()` removes it. */
export async function createScratchDatabase(): Promise<{ dsn: string; drop(): Promise<void> }> {
  const name = `jan_e2e_${randomBytes(6).toString('hex')}`;
  const run = async (sql: string) => {
    const client = new Client({ connectionString: postgresDsn() });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await run(`CREATE DATABASE ${name}`);
  const url = new URL(postgresDsn());
  url.pathname = `/${name}`;
  return { dsn: url.toString(), drop: () => run(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}
