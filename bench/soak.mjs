// Soak: the built media API under a modest, steady mix for a while, sampled every 30 s, to see
// whether anything grows without levelling off (not part of `pnpm test` or `pnpm bench`).
//
//   node bench/soak.mjs
//   env: SOAK_SECONDS (480), SOAK_SAMPLE_SECONDS (30), SOAK_CONCURRENCY (3), SOAK_PAUSE_MS (10, per operation),
//        BENCH_POSTGRES_DSN / TEST_POSTGRES_DSN (a scratch database is made on that server, then dropped)
//
// Each request is for one of many distinct users (X-Jan-User-Id with the service key): ingest of a
// distinct small PNG, the same bytes again (dedupe), resolve, serve, presign + fetch of the signed
// URL, delete, and downloads and uploads the client aborts half way. A sample is RSS, V8 heap used
// (from /metrics), open descriptors, the database's connections and `.partial` files left on disk.
import { request } from 'node:http';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { startApp } from './lib/app.mjs';
import { solidPng, stampablePng } from './lib/png.mjs';
import { findPostgres, scratchDatabase } from './lib/postgres.mjs';
import { memoryOf } from './lib/proc.mjs';

const seconds = Number(process.env.SOAK_SECONDS ?? 480);
const sampleSeconds = Number(process.env.SOAK_SAMPLE_SECONDS ?? 30);
const concurrency = Number(process.env.SOAK_CONCURRENCY ?? 3);
const pauseMs = Number(process.env.SOAK_PAUSE_MS ?? 10);
const log = (line) => process.stdout.write(`[soak] ${line}\n`);

async function countPartials(directory) {
  let count = 0;
  let entries;
  try {
    entries = await readdir(directory, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const entry of entries) {
    if (entry.isDirectory()) count += await countPartials(join(directory, entry.name));
    else if (entry.name.endsWith('.partial')) count++;
  }
  return count;
}

/** V8 heap used and memory outside it (Buffers, native objects), in MiB, from /metrics. */
async function heapOf(app) {
  const text = await (await fetch(`${app.baseUrl}/metrics`, { headers: { 'x-media-service-key': app.serviceKey } })).text();
  const mb = (name) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN) / 2 ** 20;
  return { heapMb: mb('nodejs_heap_size_used_bytes'), externalMb: mb('nodejs_external_memory_bytes') };
}

/** A body sent only in part before the socket is destroyed: the server sees the client go away. */
function abortedUpload(app, user, body) {
  return new Promise((resolve) => {
    const req = request(`${app.baseUrl}/v1/media`, {
      method: 'POST',
      headers: { 'x-media-service-key': app.serviceKey, 'x-jan-user-id': user, 'content-type': 'application/json', 'content-length': body.length },
    });
    req.on('error', () => resolve());
    req.write(body.subarray(0, body.length >> 1), () => setTimeout(() => (req.destroy(), resolve()), 20));
  });
}

async function main() {
  const server = await findPostgres();
  if (!server) throw new Error('no PostgreSQL: set BENCH_POSTGRES_DSN or TEST_POSTGRES_DSN');
  const database = await scratchDatabase(server);
  const dataDir = await mkdtemp(join(tmpdir(), 'jan-soak-'));
  const monitor = new pg.Client({ connectionString: server });
  await monitor.connect();
  const dbName = new URL(database.dsn).pathname.slice(1);
  const app = await startApp({
    label: 'soak',
    dataDir,
    database: { dsn: database.dsn, serviceKey: `soak-${randomUUID()}`, signingKeys: `soak:${randomUUID()}${randomUUID()}` },
  });
  log(`app pid ${app.pid} on ${app.baseUrl}, data in ${dataDir}, database ${dbName}`);

  const stamp = stampablePng(await solidPng(16, 16, [40, 120, 200]), 512);
  let counter = 0;
  const recent = []; // [{ id, user, dataUrl }], the last few hundred ingests
  const counts = new Map();
  const note = (what, status) => counts.set(`${what} ${status}`, (counts.get(`${what} ${status}`) ?? 0) + 1);
  const headers = (user, json) => ({ 'x-media-service-key': app.serviceKey, 'x-jan-user-id': user, ...(json ? { 'content-type': 'application/json' } : {}) });
  const pick = () => recent[Math.floor(Math.random() * recent.length)];

  async function ingest(user, dataUrl) {
    const response = await fetch(`${app.baseUrl}/v1/media`, {
      method: 'POST',
      headers: { ...headers(user, true), 'idempotency-key': randomUUID() },
      body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl } }),
    });
    const json = await response.json();
    note(json.deduped ? 'dedupe' : 'ingest', response.status);
    return json;
  }

  const operations = [
    async () => {
      const n = ++counter;
      const user = `soak-user-${n}`;
      const dataUrl = `data:image/png;base64,${stamp(n).toString('base64')}`;
      const media = await ingest(user, dataUrl);
      if (media.id) recent.push({ id: media.id, user, dataUrl });
      if (recent.length > 300) recent.shift();
    },
    async () => {
      if (!recent.length) return;
      const { user, dataUrl } = pick();
      await ingest(user, dataUrl);
    },
    async () => {
      if (!recent.length) return;
      const { id, user } = pick();
      const response = await fetch(`${app.baseUrl}/v1/media/resolve`, { method: 'POST', headers: headers(user, true), body: JSON.stringify({ ids: [id] }) });
      await response.arrayBuffer();
      note('resolve', response.status);
    },
    async () => {
      if (!recent.length) return;
      const { id, user } = pick();
      const response = await fetch(`${app.baseUrl}/v1/media/${id}`, { headers: headers(user) });
      await response.arrayBuffer();
      note('serve', response.status);
    },
    async () => {
      if (!recent.length) return;
      const { id, user } = pick();
      const response = await fetch(`${app.baseUrl}/v1/media/${id}/presign`, { headers: headers(user) });
      const json = await response.json();
      note('presign', response.status);
      if (json.url) {
        const file = await fetch(json.url);
        await file.arrayBuffer();
        note('signed-get', file.status);
      }
    },
    async () => {
      if (recent.length < 50) return;
      const { id, user } = recent.splice(Math.floor(Math.random() * recent.length), 1)[0];
      const response = await fetch(`${app.baseUrl}/v1/media/${id}`, { method: 'DELETE', headers: headers(user) });
      note('delete', response.status);
    },
    async () => {
      if (!recent.length) return;
      const { id, user } = pick();
      const controller = new AbortController();
      try {
        const response = await fetch(`${app.baseUrl}/v1/media/${id}`, { headers: headers(user), signal: controller.signal });
        controller.abort();
        await response.arrayBuffer().catch(() => undefined);
        note('aborted-get', response.status);
      } catch {
        note('aborted-get', 'aborted');
      }
    },
    async () => {
      const body = Buffer.from(JSON.stringify({ source: { type: 'data_url', data_url: `data:image/png;base64,${stamp(++counter).toString('base64')}` } }));
      await abortedUpload(app, `soak-user-${counter}`, body);
      note('aborted-upload', 'sent');
    },
  ];
  // Ingests twice as often as the rest, so the population of users and objects keeps growing.
  const weights = [4, 1, 2, 2, 2, 1, 1, 1];
  const table = weights.flatMap((weight, index) => Array(weight).fill(operations[index]));

  const samples = [];
  const started = Date.now();
  const sample = async () => {
    const { rows } = await monitor.query('select count(*)::int as n from pg_stat_activity where datname = $1', [dbName]);
    samples.push({
      t: Math.round((Date.now() - started) / 1000),
      rssMb: memoryOf(app.pid)?.rssMb ?? NaN,
      ...(await heapOf(app)),
      fds: readdirSync(`/proc/${app.pid}/fd`).length,
      pg: rows[0].n,
      partials: await countPartials(dataDir),
      requests: [...counts.values()].reduce((a, b) => a + b, 0),
    });
    const s = samples.at(-1);
    log(`t=${s.t}s rss=${s.rssMb.toFixed(1)}MB heap=${s.heapMb.toFixed(1)}MB external=${s.externalMb.toFixed(1)}MB fds=${s.fds} pg=${s.pg} partials=${s.partials} requests=${s.requests}`);
  };
  await sample();
  const sampler = setInterval(() => void sample().catch((error) => log(`sample failed: ${error.message}`)), sampleSeconds * 1000);
  const deadline = started + seconds * 1000;
  const failures = new Map();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < deadline) {
        try {
          await table[Math.floor(Math.random() * table.length)]();
        } catch (error) {
          failures.set(error.message, (failures.get(error.message) ?? 0) + 1);
        }
        await new Promise((resolve) => setTimeout(resolve, pauseMs));
      }
    }),
  );
  clearInterval(sampler);
  // Quiet for a moment, then a last sample: what is still held once the load stops.
  await new Promise((resolve) => setTimeout(resolve, 5_000));
  await sample();
  log(`requests by outcome: ${JSON.stringify(Object.fromEntries([...counts].sort()))}`);
  if (failures.size) log(`client errors: ${JSON.stringify(Object.fromEntries(failures))}`);
  process.stdout.write('\n| t (s) | RSS MB | heap MB | external MB | fds | pg conns | .partial | requests |\n|---|---|---|---|---|---|---|---|\n');
  for (const s of samples) process.stdout.write(`| ${s.t} | ${s.rssMb.toFixed(0)} | ${s.heapMb.toFixed(1)} | ${s.externalMb.toFixed(1)} | ${s.fds} | ${s.pg} | ${s.partials} | ${s.requests} |\n`);
  await app.child.stop();
  await monitor.end();
  await database.drop();
  await rm(dataDir, { recursive: true, force: true });
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
