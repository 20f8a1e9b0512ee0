import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { performance } from 'node:perf_hooks';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/**
 * The checkout whose built app is measured: this one, or BENCH_APP_DIR (e.g. a `git archive` of a
 * commit, to measure a fixed revision while the working tree changes).
 */
export const APP_DIR = resolve(process.env.BENCH_APP_DIR || REPO_ROOT);
/** The production entry point (the bundle with its code cache); builds from before it have only dist/main.js. */
export const APP_MAIN = existsSync(join(APP_DIR, 'apps/media-api/dist/start.js'))
  ? join(APP_DIR, 'apps/media-api/dist/start.js')
  : join(APP_DIR, 'apps/media-api/dist/main.js');
const PROFILE_HOOK = fileURLToPath(new URL('./cpu-profile-hook.cjs', import.meta.url));

export async function freePort() {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

/** The parent's environment without anything that would configure the app behind our back. */
function cleanEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(MEDIA_|DB_POSTGRESQL_|LOG_LEVEL$|AUTH_|NODE_OPTIONS$|OTEL_)/.test(k)) continue;
    env[k] = v;
  }
  return env;
}

/**
 * BENCH_APP_ENV: `NAME=value` pairs, separated by spaces, set in the app's environment (for
 * experiments, e.g. `BENCH_APP_ENV="MEDIA_LOCAL_FSYNC=false"`). bench/run.mjs prints them and keeps
 * them with the results.
 */
function benchAppEnv() {
  const pairs = (process.env.BENCH_APP_ENV ?? '').split(/\s+/).filter(Boolean);
  return Object.fromEntries(
    pairs.map((pair) => {
      const at = pair.indexOf('=');
      if (at <= 0) throw new Error(`BENCH_APP_ENV: expected NAME=value, got ${pair}`);
      return [pair.slice(0, at), pair.slice(at + 1)];
    }),
  );
}

/** A child process we own, with its output kept (the tail) for error messages. */
export class Child {
  constructor(command, args, { logFile, ...options }) {
    this.log = '';
    this.spawnedAt = performance.now();
    this.process = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    this.pid = this.process.pid;
    this.exited = new Promise((resolve) => this.process.once('exit', (code, signal) => resolve({ code, signal })));
    this.exitInfo = null;
    void this.exited.then((info) => (this.exitInfo = info));
    const keep = (chunk) => {
      this.log = (this.log + chunk.toString()).slice(-16_000);
    };
    this.process.stdout.on('data', keep);
    this.process.stderr.on('data', keep);
    // BENCH_APP_LOG: also append everything the child prints to this file (e.g. --trace-deopt).
    if (logFile) {
      const file = createWriteStream(logFile, { flags: 'a' });
      this.process.stdout.pipe(file);
      this.process.stderr.pipe(file);
    }
  }

  async stop(signal = 'SIGTERM', graceMs = 15_000) {
    if (this.exitInfo) return this.exitInfo;
    this.process.kill(signal);
    const timer = setTimeout(() => this.process.kill('SIGKILL'), graceMs);
    const info = await this.exited;
    clearTimeout(timer);
    return info;
  }
}

async function status(url, headers = {}) {
  try {
    const response = await fetch(url, { headers, signal: AbortSignal.timeout(2_000) });
    await response.arrayBuffer();
    return response.status;
  } catch {
    return 0;
  }
}

/** Polls `url` until it answers 200; returns ms since the child was spawned. */
export async function waitFor200(child, url, timeoutMs, what) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (child.exitInfo) throw new Error(`${what} exited (${JSON.stringify(child.exitInfo)}) before ${url} answered 200:\n${child.log}`);
    if ((await status(url)) === 200) return performance.now() - child.spawnedAt;
    if (performance.now() > deadline) throw new Error(`${what}: ${url} did not answer 200 within ${timeoutMs} ms:\n${child.log}`);
    await sleep(10);
  }
}

/**
 * Boots apps/media-api/dist/main.js as a child process. `database` is `{ dsn }` for PostgreSQL
 * or null for the embedded default; returns once /readyz answers 200.
 */
export async function startApp({ label, dataDir, database, extraEnv = {}, profileDir }) {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const env = {
    ...cleanEnv(),
    MEDIA_API_PORT: String(port),
    MEDIA_API_HOST: '127.0.0.1',
    MEDIA_DATA_DIR: dataDir,
    MEDIA_PUBLIC_URL: baseUrl,
    LOG_LEVEL: 'warn',
    // One user drives thousands of requests a second here: keep the limiter in the path (its cost
    // is measured) but never let it answer 429. Revisions without a limiter ignore these.
    MEDIA_RATE_LIMIT: '1000000000',
    MEDIA_RATE_LIMIT_SERVICE: '1000000000',
    ...(database
      ? {
          DB_POSTGRESQL_WRITE_DSN: database.dsn,
          MEDIA_SERVICE_KEY: database.serviceKey,
          MEDIA_SIGNING_KEYS: database.signingKeys,
        }
      : {}),
    ...(profileDir ? { BENCH_CPU_PROFILE_DIR: profileDir } : {}),
    ...extraEnv,
    ...benchAppEnv(),
  };
  // BENCH_NODE_ARGS: extra flags for the app's node (e.g. "--trace-gc"), for experiments only.
  const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const args = [...nodeArgs, ...(profileDir ? ['-r', PROFILE_HOOK] : []), APP_MAIN];
  const child = new Child(process.execPath, args, { cwd: APP_DIR, env, logFile: process.env.BENCH_APP_LOG });
  // An embedded data dir created from scratch costs the database's initdb (~10 s on 2 cores).
  const readyMs = await waitFor200(child, `${baseUrl}/readyz`, 180_000, `media-api (${label})`);
  const serviceKey = database ? database.serviceKey : (await readFile(`${dataDir}/secrets/service-key`, 'utf8')).trim();
  return { label, child, pid: child.pid, baseUrl, port, readyMs, serviceKey, profileDir };
}

/** Reads `media_presign_cache_hits` / `_misses` from the Prometheus endpoint. */
/**
 * `media_db_statement_duration_seconds` sums and counts by statement (ok outcomes), from the
 * Prometheus endpoint; revisions without the metric give an empty map.
 */
export async function statementTotals(app) {
  const response = await fetch(`${app.baseUrl}/metrics`, { headers: { 'x-media-service-key': app.serviceKey } });
  const text = await response.text();
  const totals = new Map();
  for (const [, kind, statement, value] of text.matchAll(/^media_db_statement_duration_seconds_(sum|count)\{statement="([^"]+)",outcome="ok"\} (\S+)$/gm)) {
    const entry = totals.get(statement) ?? { sum: 0, count: 0 };
    entry[kind] = Number(value);
    totals.set(statement, entry);
  }
  return totals;
}

export async function presignCounters(app) {
  const response = await fetch(`${app.baseUrl}/metrics`, { headers: { 'x-media-service-key': app.serviceKey } });
  const text = await response.text();
  const value = (name) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { hits: value('media_presign_cache_hits'), misses: value('media_presign_cache_misses') };
}
