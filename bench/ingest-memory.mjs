// Peak memory of the media API under 16 concurrent ~20 MiB data-URL uploads (`pnpm bench:memory`),
// next to a bare node:http server that receives, hashes and writes the same bodies.
//
//   node bench/ingest-memory.mjs [--target=embedded|postgres]
//   env: BENCH_MEMORY_CONCURRENCY (16), BENCH_MEMORY_ROUNDS (2), BENCH_POSTGRES_DSN as for run.mjs
import { request } from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { Child, REPO_ROOT, startApp } from './lib/app.mjs';
import { noisePng, stampablePng } from './lib/png.mjs';
import { findPostgres, redact, scratchDatabase } from './lib/postgres.mjs';
import { PeakRss, memoryOf } from './lib/proc.mjs';

const BENCH_DIR = fileURLToPath(new URL('./', import.meta.url));
const RESULTS_DIR = join(BENCH_DIR, 'results');
const MAX_BYTES = 20 * 1024 * 1024;
const concurrency = Number(process.env.BENCH_MEMORY_CONCURRENCY ?? 16);
const rounds = Number(process.env.BENCH_MEMORY_ROUNDS ?? 2);
const { values: args } = parseArgs({ options: { target: { type: 'string' } } });
const log = (line) => process.stdout.write(`[bench:memory] ${line}\n`);

function post(url, headers, body) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = request(url, { method: 'POST', headers: { ...headers, 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - started, text: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** `rounds` waves of `concurrency` simultaneous uploads; peak RSS of `pid` over all of them. */
async function wave(label, url, headers, bodies, pid) {
  const peak = new PeakRss(pid, 20);
  const results = [];
  const started = performance.now();
  for (let r = 0; r < rounds; r++) {
    results.push(...(await Promise.all(bodies.slice(r * concurrency, (r + 1) * concurrency).map((b) => post(url, headers, b)))));
  }
  const elapsedS = (performance.now() - started) / 1000;
  const peakRssMb = peak.stop();
  const ok = results.filter((r) => r.status === 200).length;
  const failures = results.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.text.replace(/"request_id":"[^"]*"/, '').slice(0, 200)}`);
  const ms = results.map((r) => r.ms).sort((a, b) => a - b);
  const m = { uploads: results.length, ok, failures: [...new Set(failures)], elapsedS, perSecond: ok / elapsedS, p50Ms: ms[Math.floor(ms.length / 2)], maxMs: ms.at(-1), peakRssMb };
  log(`${label}: ${ok}/${results.length} ok in ${elapsedS.toFixed(1)} s, p50 ${m.p50Ms.toFixed(0)} ms, max ${m.maxMs.toFixed(0)} ms, peak RSS ${peakRssMb.toFixed(0)} MB`);
  for (const f of m.failures) log(`  failure: ${f}`);
  return m;
}

async function main() {
  const wantPostgres = args.target !== 'embedded';
  const dsn = wantPostgres ? await findPostgres() : null;
  if (args.target === 'postgres' && !dsn) throw new Error('no PostgreSQL answers (set BENCH_POSTGRES_DSN)');
  const scratch = dsn ? await scratchDatabase(dsn) : null;
  const targetName = scratch ? 'postgres' : 'embedded';

  // A real PNG of random pixels, stored (zlib level 0) so its size is predictable: 2580 × 2580 × 3
  // plus one filter byte per row is 19.97 MB, under MEDIA_MAX_BYTES (20 MiB) with the tEXt stamp.
  log('generating a ~20 MiB PNG');
  const base = await noisePng(2580, 2580, { compressionLevel: 0 });
  const stamp = stampablePng(base, base.length + 64);
  if (base.length + 64 > MAX_BYTES) throw new Error(`test image is ${base.length + 64} bytes, over MEDIA_MAX_BYTES`);
  const total = concurrency * rounds;
  const bodies = [];
  for (let i = 0; i < total; i++) {
    bodies.push(Buffer.from(`{"source":{"type":"data_url","data_url":"data:image/png;base64,${stamp(i + 1).toString('base64')}"}}`));
  }
  log(`${total} distinct bodies of ${(bodies[0].length / 2 ** 20).toFixed(1)} MiB (image ${((base.length + 64) / 2 ** 20).toFixed(2)} MiB); ${concurrency} at a time, ${rounds} round(s)`);

  const dataDir = await mkdtemp(join(tmpdir(), 'jan-bench-memory-'));
  const baselineDir = await mkdtemp(join(tmpdir(), 'jan-bench-memory-baseline-'));
  const database = scratch
    ? { dsn: scratch.dsn, serviceKey: 'bench-service-key-0123456789', signingKeys: 'bench:bench-signing-secret-0123456789abcdefghij' }
    : null;
  const result = { startedAt: new Date().toISOString(), machine: { cpus: cpus().length, node: process.version }, target: targetName, concurrency, rounds, imageBytes: base.length + 64, bodyBytes: bodies[0].length };
  let app;
  try {
    log(`booting the app (${scratch ? redact(scratch.dsn) : 'embedded'})`);
    app = await startApp({ label: targetName, dataDir, database, extraEnv: { MEDIA_MAX_BYTES: String(MAX_BYTES), ...(process.env.MEDIA_BODY_MEMORY_BUDGET ? { MEDIA_BODY_MEMORY_BUDGET: process.env.MEDIA_BODY_MEMORY_BUDGET } : {}) } });
    await sleep(2_000);
    result.idleRssMb = memoryOf(app.pid).rssMb;
    const headers = { 'x-media-service-key': app.serviceKey, 'x-jan-user-id': 'bench-user' };
    result.service = await wave('service', `${app.baseUrl}/v1/media`, headers, bodies, app.pid);
    if (result.service.failures.length) log(`app log (tail):\n${app.child.log.slice(-3000)}`);
    await app.child.stop();
    app = null;

    const baseline = new Child(process.execPath, [join(BENCH_DIR, 'baselines', 'ingest-baseline.mjs'), baselineDir], { cwd: REPO_ROOT });
    try {
      let port;
      for (let i = 0; i < 500 && !port; i++) {
        port = /^\{"port":(\d+)\}$/m.exec(baseline.log)?.[1];
        if (!port) await sleep(10);
      }
      if (!port) throw new Error(`baseline did not start:\n${baseline.log}`);
      result.baseline = await wave('baseline', `http://127.0.0.1:${port}/`, {}, bodies, baseline.pid);
    } finally {
      await baseline.stop();
    }
  } finally {
    await app?.child.stop();
    await rm(dataDir, { recursive: true, force: true });
    await rm(baselineDir, { recursive: true, force: true });
    await scratch?.drop().catch(() => undefined);
  }

  const pass = result.service.peakRssMb <= 300 && result.service.ok === result.service.uploads;
  result.check = { name: 'peak RSS <= 300 MB with every upload accepted', pass, detail: `${result.service.peakRssMb.toFixed(0)} MB, ${result.service.ok}/${result.service.uploads} ok` };
  const row = (side, m) =>
    `${side.padEnd(9)} ${String(`${m.ok}/${m.uploads}`).padEnd(7)} ${m.perSecond.toFixed(2).padStart(9)} ${m.p50Ms.toFixed(0).padStart(7)} ${m.maxMs.toFixed(0).padStart(7)} ${m.peakRssMb.toFixed(0).padStart(12)}`;
  process.stdout.write(
    [
      '',
      `== ingest memory — ${concurrency} concurrent ~20 MiB PNG data URLs (${targetName}; idle RSS ${result.idleRssMb.toFixed(0)} MB) ==`,
      'side      ok      uploads/s  p50 ms  max ms  peak RSS MB',
      row('service', result.service),
      row('baseline', result.baseline),
      `${pass ? 'PASS' : 'FAIL'} ${result.check.name} (${result.check.detail}); service/baseline peak RSS ${(result.service.peakRssMb / result.baseline.peakRssMb).toFixed(1)}x`,
      '',
    ].join('\n') + '\n',
  );
  await mkdir(RESULTS_DIR, { recursive: true });
  const stampName = result.startedAt.replace(/[:.]/g, '-');
  await writeFile(join(RESULTS_DIR, `memory-${stampName}.json`), JSON.stringify(result, null, 2));
  await writeFile(join(RESULTS_DIR, 'memory-latest.json'), JSON.stringify(result, null, 2));
}

main().catch((error) => {
  process.stderr.write(`[bench:memory] failed: ${error.stack ?? error}\n`);
  process.exit(1);
});
