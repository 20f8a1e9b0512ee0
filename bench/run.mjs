// The benchmark suite (`pnpm bench`): boots the real media API, drives each hot path with
// autocannon at fixed concurrency, and runs a bare node:http baseline doing the irreducible work of
// the same path in the same run. See docs/performance.md.
//
//   node bench/run.mjs [--only=resolve,ingest,serve,presign] [--targets=embedded,postgres] [--profile]
//   env: BENCH_CONNECTIONS (16), BENCH_DURATION (6 s), BENCH_WARMUP (2 s), BENCH_WARMUP_INGEST (8 s),
//        BENCH_APP_ENV ("NAME=value ..." set in the app's environment, for experiments),
//        BENCH_POSTGRES_DSN (else TEST_POSTGRES_DSN, else postgres://root@127.0.0.1:5432/test if it answers; "off" to skip),
//        BENCH_APP_DIR (measure the app built in another checkout), BENCH_APP_REVISION (label for it)
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { APP_DIR, APP_MAIN, Child, REPO_ROOT, presignCounters, startApp, statementTotals } from './lib/app.mjs';
import { formatProfileSummary, summarizeProfile } from './lib/cpu-profile.mjs';
import { settleFileSystem } from './lib/filesystem.mjs';
import { drive } from './lib/load.mjs';
import { noisePng, solidPng, stampablePng } from './lib/png.mjs';
import { findPostgres, redact, scratchDatabase } from './lib/postgres.mjs';
import { memoryOf } from './lib/proc.mjs';
import { comparison, scenarioTables } from './lib/report.mjs';

const BENCH_DIR = fileURLToPath(new URL('./', import.meta.url));
const RESULTS_DIR = join(BENCH_DIR, 'results');
const SCENARIOS = ['resolve', 'ingest', 'serve', 'presign'];
const USER = 'bench-user';
const IMAGE_BYTES = 64 * 1024;

const { values: args } = parseArgs({
  options: {
    only: { type: 'string' },
    targets: { type: 'string' },
    profile: { type: 'boolean', default: false },
  },
});
const only = args.only ? args.only.split(',').map((s) => s.trim()) : SCENARIOS;
for (const s of only) if (!SCENARIOS.includes(s)) throw new Error(`unknown scenario ${s}; choose from ${SCENARIOS.join(', ')}`);
const settings = {
  connections: Number(process.env.BENCH_CONNECTIONS ?? 16),
  durationS: Number(process.env.BENCH_DURATION ?? 6),
  warmupS: Number(process.env.BENCH_WARMUP ?? 2),
  // New-bytes ingest runs the most code of any scenario (HTTP, JSON, PNG check, SQL, files, audit):
  // after 2 s, V8 was still optimizing it, and its compiler threads cost ~470 µs per upload in the
  // window (sixteenth pass in docs/performance.md). Every window of that scenario, the baselines'
  // too, warms up this long.
  ingestWarmupS: Number(process.env.BENCH_WARMUP_INGEST ?? 8),
  // Experiments only (bench/lib/app.mjs): kept with the results so that such a run is never taken for one on the defaults.
  appEnv: process.env.BENCH_APP_ENV?.trim() || null,
};

const log = (line) => process.stdout.write(`[bench] ${line}\n`);

/* ---------- fixtures ---------- */

/** A base PNG of random pixels that leaves room for the counter chunk inside 64 KiB. */
async function ingestFixtures() {
  // 120 × 176 × 3 = 63,360 bytes of noise: ~63.6 KB as PNG, the rest is the tEXt chunk.
  const base = await noisePng(120, 176);
  const stamp = stampablePng(base, IMAGE_BYTES);
  return { stamp };
}

function dataUrlBody(png) {
  return `{"source":{"type":"data_url","data_url":"data:image/png;base64,${png.toString('base64')}"}}`;
}

/** An OpenAI-style chat of 50 messages with 10 image placeholders over 3 ids, both forms. */
function chatPayload(ids) {
  const prose =
    'Here is the quarterly report — revenue grew 12.5% (€1,234,567.89), costs fell; 漢字 and emoji 🚀 survive. ' +
    'Please compare the chart with last year and list three risks, with numbers like 3.14159, -0.0 and 1e21.';
  const messages = [{ role: 'system', content: 'You are a careful analyst. Answer in JSON when asked.' }];
  let placeholders = 0;
  for (let i = 1; i < 50; i++) {
    if (i % 2 === 0) {
      messages.push({ role: 'assistant', content: `${i}: ${prose} ${'Noted. '.repeat(i % 5)}` });
      continue;
    }
    if (placeholders < 10 && (i - 1) % 4 === 0) {
      const id = ids[placeholders % ids.length];
      const url = placeholders % 2 === 0 ? `data:image/png;${id}` : `data:image/png;base64,${id}`;
      placeholders++;
      messages.push({ role: 'user', content: [{ type: 'text', text: `${i}: ${prose}` }, { type: 'image_url', image_url: { url, detail: 'auto' } }] });
    } else {
      messages.push({ role: 'user', content: `${i}: ${prose}` });
    }
  }
  if (placeholders !== 10) throw new Error(`chat payload has ${placeholders} placeholders, expected 10`);
  return { model: 'gpt-4o', temperature: 0.2, max_tokens: 1024, metadata: { trace: 'bench', n: 12345678901234 }, messages };
}

/* ---------- HTTP helpers ---------- */

function headersFor(app, json = true) {
  return {
    'x-media-service-key': app.serviceKey,
    'x-jan-user-id': USER,
    ...(json ? { 'content-type': 'application/json' } : {}),
  };
}

async function call(app, method, path, body) {
  const response = await fetch(app.baseUrl + path, { method, headers: headersFor(app, body !== undefined), body });
  const text = await response.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, json, text };
}

async function expectOk(app, method, path, body, what) {
  const r = await call(app, method, path, body);
  if (r.status !== 200) throw new Error(`${what}: ${method} ${path} answered ${r.status}: ${r.text.slice(0, 500)}`);
  return r;
}

async function startBaseline(file, ...argv) {
  const child = new Child(process.execPath, [join(BENCH_DIR, 'baselines', file), ...argv], { cwd: REPO_ROOT });
  for (let i = 0; i < 500; i++) {
    const line = /^\{"port":\d+\}$/m.exec(child.log);
    if (line) return { child, pid: child.pid, baseUrl: `http://127.0.0.1:${JSON.parse(line[0]).port}` };
    if (child.exitInfo) break;
    await sleep(10);
  }
  await child.stop();
  throw new Error(`baseline ${file} did not start:\n${child.log}`);
}

/* ---------- one target (embedded or PostgreSQL) ---------- */

async function runTarget(target, fixtures, runDir) {
  // The app's data and the baselines' files in sibling directories: the same ext4 block group
  // (lib/filesystem.mjs), so neither side is measured on a cheaper file system than the other.
  const runRoot = await mkdtemp(join(tmpdir(), `jan-bench-${target.name}-`));
  const dataDir = join(runRoot, 'service');
  const baselineDir = join(runRoot, 'baseline');
  await mkdir(dataDir);
  await mkdir(baselineDir);
  const profileDir = args.profile ? join(runDir, 'profiles', target.name) : undefined;
  const started = { label: target.name, dataDir, database: target.database };
  log(`${target.name}: booting the app${target.database ? ` on ${redact(target.database.dsn)}` : ' (embedded database, fresh data dir)'}`);
  let app = await startApp({ ...started, profileDir: profileDir && join(profileDir, 'main') });
  const result = { name: target.name, engine: target.database ? 'postgres' : 'embedded', note: target.note, boot: { readyMs: app.readyMs }, scenarios: [] };
  try {
    await sleep(2_000);
    result.boot.idleRssMb = memoryOf(app.pid)?.rssMb;
    log(`${target.name}: ready in ${app.readyMs.toFixed(0)} ms, idle RSS ${result.boot.idleRssMb?.toFixed(0)} MB`);

    // Objects the scenarios read: three small images for resolve, one 64 KiB image to serve.
    const smallIds = [];
    for (const rgb of [[200, 30, 30], [30, 200, 30], [30, 30, 200]]) {
      const r = await expectOk(app, 'POST', '/v1/media', dataUrlBody(await solidPng(64, 64, rgb)), 'setup ingest');
      smallIds.push(r.json.id);
    }
    const servePng = Buffer.from(fixtures.stamp(999_999_999));
    const serveId = (await expectOk(app, 'POST', '/v1/media', dataUrlBody(servePng), 'setup ingest')).json.id;
    const serveFile = join(baselineDir, 'serve.png');
    await writeFile(serveFile, servePng);
    const presignIds = [...smallIds, serveId];

    let window = 0;
    const profiled = (scenario) => {
      if (!profileDir) return {};
      return {
        before: async () => process.kill(app.pid, 'SIGWINCH'),
        after: async () => {
          process.kill(app.pid, 'SIGWINCH');
          const n = ++window;
          const done = join(app.profileDir, `window-${n}.done`);
          for (let i = 0; i < 600 && !existsSync(done); i++) await sleep(50);
          const file = join(profileDir, `${scenario}.cpuprofile`);
          await rename(join(app.profileDir, `window-${n}.cpuprofile`), file);
          log(formatProfileSummary(summarizeProfile(JSON.parse(await readFile(file, 'utf8'))), `${target.name} ${scenario}: ${file}`));
        },
      };
    };

    const measure = async (label, url, requests, pid, around, overrides = {}) => {
      // No window pays for writing back the files of the one before it.
      const syncMs = settleFileSystem();
      // Other work on the machine skews everything on 2 cores: keep the 1-minute load with each run.
      const loadBefore = loadavg()[0];
      // The service's statement counters, from the end of the warmup to the end of the window.
      let statementsBefore = null;
      const timed =
        pid === app.pid
          ? {
              before: async () => {
                statementsBefore = await statementTotals(app);
                await around?.before?.();
              },
              after: around?.after,
            }
          : around;
      const m = await drive({ url, requests, pid, around: timed, connections: settings.connections, durationS: settings.durationS, warmupS: settings.warmupS, ...overrides });
      m.warmupS = overrides.warmupS ?? settings.warmupS;
      m.loadavg1 = +Math.max(loadBefore, loadavg()[0]).toFixed(2);
      m.syncMs = Math.round(syncMs);
      if (statementsBefore) m.statements = statementsPerRequest(statementsBefore, await statementTotals(app), m.requests);
      const cpu = `CPU/req ${m.cpuUs?.toFixed(0) ?? '?'} µs (event loop ${m.loopCpuUs?.toFixed(0) ?? '?'})${target.database ? ` + db ${m.dbCpuUs?.toFixed(0) ?? '?'} µs` : ''}`;
      log(`${target.name} ${label}: ${m.rps.toFixed(0)} req/s, p50 ${m.p50} ms, p99 ${m.p99} ms, ${cpu}, peak RSS ${m.peakRssMb.toFixed(0)} MB, non2xx ${m.non2xx}, errors ${m.errors}, load ${m.loadavg1}`);
      if (m.statements && Object.keys(m.statements).length) {
        const parts = Object.entries(m.statements).map(([name, s]) => `${name} ${s.perRequest.toFixed(2)}/req × ${s.meanMs.toFixed(2)} ms`);
        log(`${target.name} ${label}: database statements (mean wall time from the pool, waiting included): ${parts.join(', ')}`);
      }
      if (m.ok === 0) throw new Error(`${target.name} ${label}: no successful response`);
      return m;
    };
    const withBaseline = async (file, argv, fn) => {
      const baseline = await startBaseline(file, ...argv);
      try {
        return await fn(baseline);
      } finally {
        await baseline.child.stop();
      }
    };
    const cacheDelta = async (fn) => {
      const before = await presignCounters(app);
      const value = await fn();
      const after = await presignCounters(app);
      const hits = after.hits - before.hits;
      const misses = after.misses - before.misses;
      return { value, cacheHitRatio: hits + misses ? hits / (hits + misses) : null, cacheHits: hits, cacheMisses: misses };
    };
    const ratioCheck = (name, s, min) => ({
      name: `throughput >= ${min * 100}% of baseline`,
      pass: s.ratio === null ? null : s.ratio >= min,
      detail: s.ratio === null ? 'no baseline' : `${(100 * s.ratio).toFixed(0)}%`,
    });
    const rssCheck = (s) => ({ name: 'peak RSS <= 300 MB', pass: s.service.peakRssMb <= 300, detail: `${s.service.peakRssMb.toFixed(0)} MB` });
    const validity = (s) => {
      const bad = (m) => m && (m.non2xx > 0 || m.errors > 0 || m.timeouts > 0);
      if (bad(s.service) || bad(s.baseline)) s.checks.unshift({ name: 'all responses 2xx', pass: false, detail: 'errors in the run: numbers are not comparable' });
    };
    const scenario = (name, description, service, baseline, checks) => {
      const s = { name, description, service, baseline, ratio: baseline ? service.rps / baseline.rps : null, checks: [] };
      s.checks = checks(s);
      validity(s);
      result.scenarios.push(s);
      return s;
    };

    /* resolve */
    if (only.includes('resolve')) {
      const body = JSON.stringify({ payload: chatPayload(smallIds) });
      const probe = await expectOk(app, 'POST', '/v1/media/resolve', body, 'resolve');
      const out = JSON.stringify(probe.json.payload);
      if (/data:image\/png;(base64,)?jan_/.test(out)) throw new Error('resolve left placeholders in the payload');
      const serverTiming = probe.headers.get('server-timing');
      const requests = [{ method: 'POST', path: '/v1/media/resolve', headers: headersFor(app), body }];
      const { value: service, ...cache } = await cacheDelta(() => measure('resolve', app.baseUrl, requests, app.pid, profiled('resolve')));
      const baseline = await withBaseline('resolve-baseline.mjs', [], (b) => measure('resolve baseline', b.baseUrl, requests, b.pid));
      // On PostgreSQL, also the floor with the one mandatory query (reported, not a target).
      const floor = target.database
        ? await withBaseline('resolve-query-baseline.mjs', [target.database.dsn, smallIds.join(',')], (b) => measure('resolve floor (baseline + 1 query)', b.baseUrl, requests, b.pid))
        : null;
      const s = scenario('resolve', `50-message chat, 10 placeholders (both forms), 3 ids, ${Buffer.byteLength(body)} B body`, service, baseline, (s) => [
        ratioCheck('resolve', s, 0.5),
        { name: 'p99 <= baseline p99 + 10 ms', pass: service.p99 <= baseline.p99 + 10, detail: `${service.p99} vs ${baseline.p99} + 10` },
        { name: 'presign cache hits >= 99%', pass: cache.cacheHitRatio === null ? null : cache.cacheHitRatio >= 0.99, detail: cache.cacheHitRatio === null ? 'no signing' : `${(100 * cache.cacheHitRatio).toFixed(2)}%` },
      ]);
      Object.assign(s, cache, { serverTimingSample: serverTiming });
      if (floor) Object.assign(s, { floor, floorRatio: service.rps / floor.rps, bareFloorRatio: floor.rps / baseline.rps });
    }

    /* ingest: distinct bytes, then identical bytes (dedupe) */
    if (only.includes('ingest')) {
      let counter = 1_000;
      const distinct = () => dataUrlBody(fixtures.stamp(++counter));
      const ingestRequests = (h) => [{ method: 'POST', path: '/v1/media', headers: h, setupRequest: (req) => ({ ...req, body: distinct() }) }];
      const first = await expectOk(app, 'POST', '/v1/media', distinct(), 'ingest');
      if (first.json.deduped !== false) throw new Error('ingest of new bytes came back deduped');
      const ingestWarmup = { warmupS: settings.ingestWarmupS };
      const service = await measure('ingest distinct', app.baseUrl, ingestRequests(headersFor(app)), app.pid, profiled('ingest-distinct'), ingestWarmup);
      const baseline = await withBaseline('ingest-baseline.mjs', [baselineDir], (b) => measure('ingest baseline', b.baseUrl, ingestRequests(headersFor(app)), b.pid, undefined, ingestWarmup));
      // Also the same work made durable as the service's local disk makes it (reported, not a target).
      const floor = await withBaseline('ingest-durable-baseline.mjs', [baselineDir], (b) =>
        measure('ingest floor (baseline, durable)', b.baseUrl, ingestRequests(headersFor(app)), b.pid, undefined, ingestWarmup),
      );
      const required = target.database
        ? await withBaseline('ingest-required-baseline.mjs', [baselineDir, target.database.dsn], (b) =>
            measure('ingest floor (every required step)', b.baseUrl, ingestRequests(headersFor(app)), b.pid, undefined, ingestWarmup),
          )
        : null;
      const s = scenario('ingest', '64 KiB PNG data URLs, distinct bytes per request (sniff + decode check on)', service, baseline, (s) => [ratioCheck('ingest', s, 0.4), rssCheck(s)]);
      Object.assign(s, { floor, floorRatio: service.rps / floor.rps, bareFloorRatio: floor.rps / baseline.rps, floorNote: 'the baseline + fdatasync, rename and a shared directory fsync, reported only' });
      if (required) Object.assign(s, { required, requiredRatio: service.rps / required.rps, bareRequiredRatio: required.rps / baseline.rps });

      const same = dataUrlBody(fixtures.stamp(1));
      await expectOk(app, 'POST', '/v1/media', same, 'ingest (dedupe seed)');
      const again = await expectOk(app, 'POST', '/v1/media', same, 'ingest (dedupe)');
      if (again.json.deduped !== true) throw new Error('re-ingesting identical bytes did not dedupe');
      const dedupe = await measure('ingest dedupe', app.baseUrl, [{ method: 'POST', path: '/v1/media', headers: headersFor(app), body: same }], app.pid, profiled('ingest-dedupe'));
      const d = scenario('ingest-dedupe', '64 KiB PNG data URL, identical bytes (dedupe path)', dedupe, baseline, (s) => [ratioCheck('ingest', s, 0.4), rssCheck(s)]);
      d.baselineShared = true;
    }

    /* serve */
    if (only.includes('serve')) {
      const probe = await fetch(`${app.baseUrl}/v1/media/${serveId}`, { headers: headersFor(app, false) });
      const bytes = Buffer.from(await probe.arrayBuffer());
      if (probe.status !== 200 || !bytes.equals(servePng)) throw new Error(`serve: GET answered ${probe.status} with ${bytes.length} bytes`);
      const service = await measure('serve', app.baseUrl, [{ method: 'GET', path: `/v1/media/${serveId}`, headers: headersFor(app, false) }], app.pid, profiled('serve'));
      const baseline = await withBaseline('serve-baseline.mjs', [serveFile], (b) => measure('serve baseline', b.baseUrl, [{ method: 'GET', path: '/' }], b.pid));
      scenario('serve', 'GET of a 64 KiB PNG through the proxy', service, baseline, (s) => [ratioCheck('serve', s, 0.6)]);
    }

    /* presign, warm cache; the cold run follows on a restarted app with the cache off */
    let presignBaseline;
    if (only.includes('presign')) {
      const requests = presignIds.map((id) => ({ method: 'GET', path: `/v1/media/${id}/presign`, headers: headersFor(app, false) }));
      await expectOk(app, 'GET', requests[0].path, undefined, 'presign');
      const { value: service, ...cache } = await cacheDelta(() => measure('presign warm', app.baseUrl, requests, app.pid, profiled('presign-warm')));
      presignBaseline = await withBaseline('presign-baseline.mjs', [], (b) => measure('presign baseline', b.baseUrl, requests, b.pid));
      const s = scenario('presign', `GET /v1/media/:id/presign over ${presignIds.length} ids, warm cache`, service, presignBaseline, () => [
        { name: 'warm >= 3000 req/s', pass: service.rps >= 3000, detail: `${service.rps.toFixed(0)}/s` },
      ]);
      Object.assign(s, cache);
    }

    await app.child.stop();
    log(`${target.name}: restarting with MEDIA_PRESIGN_CACHE_SIZE=0 on the same data`);
    app = await startApp({ ...started, extraEnv: { MEDIA_PRESIGN_CACHE_SIZE: '0' }, profileDir: profileDir && join(profileDir, 'cold') });
    window = 0;
    result.boot.restartReadyMs = app.readyMs;
    await sleep(2_000);
    result.boot.restartIdleRssMb = memoryOf(app.pid)?.rssMb;
    if (only.includes('presign')) {
      const requests = presignIds.map((id) => ({ method: 'GET', path: `/v1/media/${id}/presign`, headers: headersFor(app, false) }));
      const { value: service, ...cache } = await cacheDelta(() => measure('presign cold', app.baseUrl, requests, app.pid, profiled('presign-cold')));
      const s = scenario('presign-cold', `GET /v1/media/:id/presign over ${presignIds.length} ids, cache off (every request signs)`, service, presignBaseline, () => []);
      s.baselineShared = true;
      Object.assign(s, cache);
    }

    const pg = Boolean(target.database);
    result.boot.checks = [
      { name: 'idle RSS <= 150 MB (first boot)', pass: result.boot.idleRssMb <= 150, detail: `${result.boot.idleRssMb.toFixed(0)} MB` },
      { name: 'idle RSS <= 150 MB (restart)', pass: result.boot.restartIdleRssMb <= 150, detail: `${result.boot.restartIdleRssMb.toFixed(0)} MB` },
      pg
        ? { name: '/readyz <= 1.5 s (first boot)', pass: result.boot.readyMs <= 1500, detail: `${result.boot.readyMs.toFixed(0)} ms` }
        : { name: '/readyz <= 1.5 s', pass: null, detail: 'target is for PostgreSQL; the embedded first boot includes initdb' },
      pg
        ? { name: '/readyz <= 1.5 s (restart)', pass: result.boot.restartReadyMs <= 1500, detail: `${result.boot.restartReadyMs.toFixed(0)} ms` }
        : { name: '/readyz restart', pass: null, detail: `${result.boot.restartReadyMs.toFixed(0)} ms (reopened data dir)` },
    ];
    return result;
  } finally {
    await app.child.stop();
    await rm(runRoot, { recursive: true, force: true });
  }
}

/* ---------- main ---------- */

function gitInfo() {
  const info = { appDir: APP_DIR === REPO_ROOT.replace(/\/$/, '') ? '.' : APP_DIR };
  try {
    info.commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT }).toString().trim();
    if (info.appDir === '.') {
      info.dirty = execFileSync('git', ['status', '--porcelain', '--', 'apps', 'libs'], { cwd: REPO_ROOT }).toString().trim() !== '';
    }
  } catch {
    // Not a git checkout: the results simply carry no revision.
  }
  if (process.env.BENCH_APP_REVISION) info.appRevision = process.env.BENCH_APP_REVISION;
  return info;
}

async function main() {
  const t0 = Date.now();
  if (!existsSync(APP_MAIN)) {
    throw new Error(`${APP_MAIN} is missing: run \`pnpm bench\` (it builds first) or build @jan/media-api`);
  }
  const wanted = args.targets ? args.targets.split(',').map((s) => s.trim()) : ['embedded', 'postgres'];
  const targets = [];
  if (wanted.includes('embedded')) targets.push({ name: 'embedded', database: null });
  let scratch;
  if (wanted.includes('postgres')) {
    const dsn = await findPostgres();
    if (dsn) {
      scratch = await scratchDatabase(dsn);
      targets.push({
        name: 'postgres',
        note: scratch.note ?? `scratch database ${scratch.name} on ${redact(dsn)}`,
        database: { dsn: scratch.dsn, serviceKey: 'bench-service-key-0123456789', signingKeys: 'bench:bench-signing-secret-0123456789abcdefghij' },
      });
    } else {
      log('no PostgreSQL answers (set BENCH_POSTGRES_DSN): the postgres target is skipped');
    }
  }

  const startedAt = new Date();
  const stamp = startedAt.toISOString().replace(/[:.]/g, '-');
  const runDir = join(RESULTS_DIR, args.profile ? `profile-${stamp}` : stamp);
  const results = {
    startedAt: startedAt.toISOString(),
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGb: +(totalmem() / 2 ** 30).toFixed(1), loadavg: loadavg().map((x) => +x.toFixed(2)), node: process.version },
    git: gitInfo(),
    settings: { ...settings, scenarios: only, profile: args.profile },
    targets: [],
  };
  log(`concurrency ${settings.connections}, ${settings.warmupS} s warmup (new-bytes ingest: ${settings.ingestWarmupS} s) + ${settings.durationS} s per run, scenarios: ${only.join(', ')}; targets: ${targets.map((t) => t.name).join(', ')}`);
  if (settings.appEnv) log(`BENCH_APP_ENV: the app runs with ${settings.appEnv}, not on its defaults`);
  const fixtures = await ingestFixtures();
  try {
    for (const target of targets) results.targets.push(await runTarget(target, fixtures, runDir));
  } finally {
    await scratch?.drop().catch((error) => log(`could not drop ${scratch.name}: ${error.message}`));
  }
  results.elapsedS = (Date.now() - t0) / 1000;

  process.stdout.write('\n' + scenarioTables(results) + '\n\n');
  await mkdir(RESULTS_DIR, { recursive: true });
  const latestPath = join(RESULTS_DIR, 'latest.json');
  if (args.profile) {
    await mkdir(runDir, { recursive: true });
    await writeFile(join(runDir, 'results.json'), JSON.stringify(results, null, 2));
    log(`profiled run (numbers carry profiler overhead): results and .cpuprofile files in ${runDir}; latest.json left alone`);
  } else {
    const previous = existsSync(latestPath) ? JSON.parse(await readFile(latestPath, 'utf8')) : null;
    if (previous) {
      const diff = comparison(previous, results);
      if (diff) process.stdout.write(diff + '\n\n');
    }
    await writeFile(`${runDir}.json`, JSON.stringify(results, null, 2));
    await writeFile(latestPath, JSON.stringify(results, null, 2));
    log(`results: ${runDir}.json (and latest.json)`);
  }
  log(`done in ${results.elapsedS.toFixed(0)} s`);
}

main().catch((error) => {
  process.stderr.write(`[bench] failed: ${error.stack ?? error}\n`);
  process.exit(1);
});

/** Per statement over a window: how many per request, and their mean duration. */
function statementsPerRequest(before, after, requests) {
  const out = {};
  for (const [name, { sum, count }] of after) {
    const calls = count - (before.get(name)?.count ?? 0);
    if (calls <= 0 || !requests) continue;
    out[name] = { perRequest: calls / requests, meanMs: ((sum - (before.get(name)?.sum ?? 0)) / calls) * 1000 };
  }
  return out;
}
