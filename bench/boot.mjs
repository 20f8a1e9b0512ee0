// Start-up alone: boots the built app N times on a scratch PostgreSQL database and prints the
// milliseconds from spawn to the first 200 on /readyz, one per start.
//   node bench/boot.mjs [N=5]
// BENCH_NODE_ARGS adds node flags (e.g. "--cpu-prof --cpu-prof-dir=/tmp/boot"); BENCH_APP_DIR
// measures another checkout's build, as for bench/run.mjs. SHOWLOG=1 prints each start's output.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApp } from './lib/app.mjs';
import { findPostgres, scratchDatabase } from './lib/postgres.mjs';
const n = Number(process.argv[2] ?? 5);
const dsn = await findPostgres();
if (!dsn) throw new Error('no PostgreSQL answers: set BENCH_POSTGRES_DSN');
const scratch = await scratchDatabase(dsn);
const database = { dsn: scratch.dsn, serviceKey: 'bench-service-key-0123456789', signingKeys: 'bench:bench-signing-secret-0123456789abcdefghij' };
const dataDir = await mkdtemp(join(tmpdir(), 'boot-'));
const times = [];
for (let i = 0; i < n; i++) {
  const app = await startApp({ label: 'boot', dataDir, database });
  times.push(Math.round(app.readyMs));
  if (process.env.SHOWLOG) console.log(app.child.log);
  await app.child.stop();
}
console.log(times.join(' '));
await rm(dataDir, { recursive: true, force: true });
await scratch.drop();
