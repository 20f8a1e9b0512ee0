import pg from 'pg';
import { canConnect as answers } from '../../scripts/test-services/postgres.mjs';

const DEFAULT_DSN = 'postgres://root@127.0.0.1:5432/test';

/**
 * The PostgreSQL server to benchmark against: BENCH_POSTGRES_DSN, else TEST_POSTGRES_DSN, else the
 * local default if it answers. Returns null when there is none (or BENCH_POSTGRES_DSN=off).
 */
export async function findPostgres(env = process.env) {
  const given = env.BENCH_POSTGRES_DSN || env.TEST_POSTGRES_DSN;
  if (given === 'off' || given === 'none') return null;
  if (given) {
    if (!(await answers(given))) throw new Error(`PostgreSQL at ${redact(given)} does not answer`);
    return given;
  }
  return (await answers(DEFAULT_DSN)) ? DEFAULT_DSN : null;
}

/**
 * A database of its own on that server, so the run neither sees nor leaves rows in a database
 * tests use. Falls back to the given database when CREATE DATABASE is not allowed.
 */
export async function scratchDatabase(dsn) {
  const name = `jan_bench_${Date.now().toString(36)}_${process.pid}`;
  const admin = new pg.Client({ connectionString: dsn });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } catch (error) {
    await admin.end();
    return { dsn, scratch: false, note: `CREATE DATABASE refused (${error.message}); using the database of the DSN`, async drop() {} };
  }
  await admin.end();
  const url = new URL(dsn);
  url.pathname = `/${name}`;
  return {
    dsn: url.toString(),
    scratch: true,
    name,
    async drop() {
      const client = new pg.Client({ connectionString: dsn });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

export function redact(dsn) {
  try {
    const url = new URL(dsn);
    if (url.password) url.password = '***';
    return url.toString();
  } catch {
    return '(unparsable DSN)';
  }
}
