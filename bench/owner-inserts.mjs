// One owner's inserts against PostgreSQL (`pnpm bench:inserts`): 16 concurrent inserts, all for
// one owner (a heavy user, or a service uploading as itself), against the same for 16 owners,
// measured in the same run. Usage is counted per owner by a trigger; this shows whether one
// owner's inserts wait on each other there (docs/performance.md, seventh pass).
//
//   node bench/owner-inserts.mjs [--seconds=5] [--rounds=2]
// Needs PostgreSQL: BENCH_POSTGRES_DSN, TEST_POSTGRES_DSN or postgres://root@127.0.0.1:5432/test.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { APP_DIR } from './lib/app.mjs';
import { findPostgres, redact, scratchDatabase } from './lib/postgres.mjs';
import { postgresCpuMs } from './lib/proc.mjs';

const requireFromApp = createRequire(join(APP_DIR, 'apps/media-api/package.json'));
const { openDatabase, TypeOrmMediaRepository } = requireFromApp('@jan/persistence');
const { newMediaId } = requireFromApp('@jan/mediaid');

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, rounds: { type: 'string', default: '2' } } });
const CONCURRENCY = 16;

const dsn = await findPostgres();
if (!dsn) throw new Error('no PostgreSQL answers: set BENCH_POSTGRES_DSN (pnpm test starts one for its own run)');
const scratch = await scratchDatabase(dsn);
const db = await openDatabase({ writeDsn: scratch.dsn, dataDir: await mkdtemp(join(tmpdir(), 'jan-bench-inserts-')), poolSize: 10 });
const repo = new TypeOrmMediaRepository(db.writer);

function row(ownerId) {
  const id = newMediaId();
  const now = new Date();
  return {
    id, ownerId, storageProvider: 'local', storageKey: `images/${id}.png`, mimeType: 'image/png', bytes: 65_536,
    sha256: randomBytes(32).toString('hex'), originalSha256: null, status: 'ready', pinned: false, filename: null,
    createdAt: now, updatedAt: now, retentionUntil: null, uploadExpiresAt: null,
  };
}

/** `CONCURRENCY` loops inserting for `ownerOf(worker)` for `seconds`; inserts/s and server CPU per insert. */
async function run(ownerOf, seconds) {
  let inserts = 0;
  const loop = async (worker, until) => {
    while (Date.now() < until) {
      await repo.insert(row(ownerOf(worker)));
      inserts++;
    }
  };
  const before = postgresCpuMs();
  const started = Date.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => loop(w, started + seconds * 1000)));
  const elapsed = (Date.now() - started) / 1000;
  let dbMs = 0;
  for (const [pid, ms] of postgresCpuMs()) dbMs += ms - (before.get(pid) ?? 0);
  return { rate: inserts / elapsed, dbUs: (dbMs * 1000) / inserts };
}

const line = (label, r) => `${label.padEnd(34)} ${r.rate.toFixed(0).padStart(6)} inserts/s   PostgreSQL CPU ${r.dbUs.toFixed(0).padStart(5)} µs/insert`;
try {
  console.log(`[bench] ${CONCURRENCY} concurrent repository inserts on ${redact(scratch.dsn)}, ${values.seconds} s per run, ${values.rounds} rounds`);
  await run((w) => `warmup-${w}`, 1);
  for (let round = 1; round <= Number(values.rounds); round++) {
    const tag = randomBytes(3).toString('hex');
    const many = await run((w) => `owner-${tag}-${w}`, Number(values.seconds));
    const one = await run(() => `owner-${tag}-all`, Number(values.seconds));
    console.log(line(`round ${round}: 16 owners (baseline)`, many));
    console.log(line(`round ${round}: one owner`, one));
    console.log(`round ${round}: one owner at ${((100 * one.rate) / many.rate).toFixed(0)}% of the 16-owner rate`);
  }
} finally {
  await db.close();
  await scratch.drop();
}
