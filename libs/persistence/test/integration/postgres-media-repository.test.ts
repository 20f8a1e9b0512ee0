import { randomBytes } from 'node:crypto';
import type { MediaObject } from '@jan/domain';
import { pendingMedia, readyMedia } from '@jan/domain/testing';
import { newMediaId } from '@jan/mediaid';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { MIGRATIONS, openDatabase, TypeOrmAuditLog, TypeOrmMediaRepository, type Database } from '../../src';
import { mediaRepositoryContract, type MediaRepositorySubject } from './media-repository.contract';
import { typeOrmSubject } from './typeorm-subject';

const dsn = process.env.TEST_POSTGRES_DSN;
if (!dsn) {
  throw new Error('TEST_POSTGRES_DSN is not set: these tests need a PostgreSQL server (pnpm test starts one)');
}
const DSN: string = dsn;

jest.setTimeout(60_000);

const logs: string[] = [];
let db: Database;
let subject: MediaRepositorySubject & { stop(): void };

beforeAll(async () => {
  db = await openDatabase({ writeDsn: DSN, dataDir: '/nonexistent-not-used', poolSize: 10, logger: (m) => logs.push(m) });
  subject = typeOrmSubject(db);
});

afterAll(async () => {
  subject?.stop();
  await db?.close();
});

mediaRepositoryContract('PostgreSQL', async () => subject);

describe('PostgreSQL database', () => {
  it('is the postgres engine, with the writer as reader when no replica is given', () => {
    expect(db.engine).toBe('postgres');
    expect(db.reader).toBe(db.writer);
  });

  it('has the schema the migrations describe', async () => {
    const indexes: Array<{ indexname: string; indexdef: string }> = await db.writer.query(
      `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'media_api' AND tablename = 'media_objects'`,
    );
    const byName = new Map(indexes.map((i) => [i.indexname, i.indexdef]));
    expect(byName.get('idx_media_objects_ready_retention')).toMatch(
      /\(retention_until, id\) WHERE \(\(\(status\)::text = 'ready'::text\) AND \(NOT pinned\)\)$/,
    );
    expect(byName.get('idx_media_objects_claimed_deadline')).toMatch(
      /\(upload_expires_at, id\) WHERE \(\(\(status\)::text = 'pending'::text\) AND \(claimed_at IS NOT NULL\)\)$/,
    );
    expect(byName.get('idx_media_objects_open_owner_sha256')).toMatch(
      /\(created_by, sha256\) WHERE \(\(\(status\)::text = 'pending'::text\) AND \(claimed_at IS NULL\)\)$/,
    );
    // Replaced by the three above (migration 1764000000008).
    for (const name of ['idx_media_objects_sha256', 'idx_media_objects_created_at', 'idx_media_objects_retention_until', 'idx_media_objects_pending_deadline']) {
      expect(byName.has(name)).toBe(false);
    }
    expect(byName.get('uq_media_objects_owner_sha256_ready')).toMatch(
      /CREATE UNIQUE INDEX .* \(created_by, sha256\) WHERE \(\(\(status\)::text = 'ready'::text\) AND \(NOT dedupe_exempt\)\)/,
    );
    expect(byName.get('idx_media_objects_owner_id')).toMatch(/\(created_by, id\)$/);
    expect(byName.has('idx_media_objects_created_by')).toBe(false);
    const applied: Array<{ name: string }> = await db.writer.query('SELECT name FROM media_api.migrations ORDER BY id');
    expect(applied.map((m) => m.name)).toEqual([
      'MediaObjects1764000000000',
      'MediaAuditEvents1764000000001',
      'OwnerUsage1764000000002',
      'OwnerListingIndex1764000000003',
      'ShardedOwnerUsage1764000000004',
      'ClaimMarker1764000000005',
      'UsageTriggerOnChange1764000000006',
      'FirstUseCopies1764000000007',
      'LeanWriteIndexes1764000000008',
    ]);
  });

  it('makes a reservation ready beside its twin only when asked (besideTwin), and still dedupes every other row', async () => {
    const repo = new TypeOrmMediaRepository(db.writer);
    const owner = `beside-${randomBytes(6).toString('hex')}`;
    const sha = randomBytes(32).toString('hex');
    const twin = readyMedia(owner, { sha256: sha, bytes: 5 });
    expect((await repo.insert(twin)).inserted).toBe(true);
    const reservation = readyMedia(owner, { status: 'pending', sha256: null, bytes: 0, retentionUntil: null, uploadExpiresAt: new Date(Date.now() + 60_000) });
    expect((await repo.insert(reservation)).inserted).toBe(true);
    const facts = { bytes: 5, sha256: sha, mimeType: 'image/png' as const, retentionUntil: null };
    // Without besideTwin: dedupe, as before.
    expect(await repo.markReady(reservation, facts, new Date())).toMatchObject({ inserted: false, existing: { id: twin.id } });
    const own = await repo.markReady(reservation, facts, new Date(), { maxObjects: 0, maxBytes: 0 }, { besideTwin: true });
    expect(own).toMatchObject({ inserted: true, media: { id: reservation.id, status: 'ready', sha256: sha, bytes: 5 } });
    const [flags] = await db.writer.query('SELECT dedupe_exempt FROM media_api.media_objects WHERE id = $1', [reservation.id]);
    expect(flags.dedupe_exempt).toBe(true);
    expect(await repo.usage(owner)).toEqual({ objects: 2, bytes: 10 });
    // A new ready row of the same bytes still meets the indexed twin, not a second exemption.
    expect(await repo.insert(readyMedia(owner, { sha256: sha, bytes: 5 }))).toMatchObject({ inserted: false, existing: { id: twin.id } });
    // With the twin gone, the copy is what dedupe finds, and what a markReady or a ready insert meets.
    expect(await repo.delete(twin.id)).toBe(true);
    expect((await repo.findReadyByOwnerAndSha256(owner, sha))?.id).toBe(reservation.id);
    const later = readyMedia(owner, { status: 'pending', sha256: null, bytes: 0, retentionUntil: null, uploadExpiresAt: new Date(Date.now() + 60_000) });
    expect((await repo.insert(later)).inserted).toBe(true);
    expect(await repo.markReady(later, facts, new Date())).toMatchObject({ inserted: false, existing: { id: reservation.id } });
    expect(await repo.insert(readyMedia(owner, { sha256: sha, bytes: 5 }))).toMatchObject({ inserted: false, existing: { id: reservation.id } });
    // A copy is charged whole: one that does not fit beside the owner's other objects is refused.
    await expect(repo.markReady(later, facts, new Date(), { maxObjects: 2, maxBytes: 9 }, { besideTwin: true })).rejects.toMatchObject({ code: 'quota_exceeded' });
    await expect(repo.markReady(later, facts, new Date(), { maxObjects: 1, maxBytes: 0 }, { besideTwin: true })).rejects.toMatchObject({ code: 'quota_exceeded' });
    expect(await repo.markReady(later, facts, new Date(), { maxObjects: 2, maxBytes: 10 }, { besideTwin: true })).toMatchObject({ inserted: true, media: { id: later.id } });
    expect(await repo.delete(later.id)).toBe(true);
    expect(await repo.delete(reservation.id)).toBe(true);
    expect(await repo.usage(owner)).toEqual({ objects: 0, bytes: 0 });
  });

  it("touches the owner's usage when a row becomes ready only if its bytes change", async () => {
    const repo = new TypeOrmMediaRepository(db.writer);
    const owner = `usage-trigger-${randomBytes(6).toString('hex')}`;
    // Every change of usage writes a slot row, so its xmin tells whether the trigger ran.
    const slots = async () =>
      (await db.writer.query(`SELECT slot, xmin::text AS xmin, objects::int AS objects, bytes::int AS bytes FROM media_api.owner_usage_slots WHERE owner_id = $1 ORDER BY slot`, [owner])) as Array<{
        slot: number;
        xmin: string;
        objects: number;
        bytes: number;
      }>;
    const total = async () => (await slots()).reduce((sum, s) => ({ objects: sum.objects + s.objects, bytes: sum.bytes + s.bytes }), { objects: 0, bytes: 0 });
    const now = new Date();
    const sha256 = () => randomBytes(32).toString('hex');

    // An ingest: pending with the stored bytes, then ready with the same bytes.
    const ingested = readyMedia(owner, { status: 'pending', bytes: 500, sha256: sha256(), retentionUntil: null, uploadExpiresAt: new Date(now.getTime() + 60_000) });
    expect((await repo.insert(ingested)).inserted).toBe(true);
    const before = await slots();
    const ready = await repo.markReady(ingested, { bytes: 500, sha256: ingested.sha256, mimeType: 'image/png', retentionUntil: null }, now);
    expect(ready).toMatchObject({ inserted: true, media: { status: 'ready', bytes: 500 } });
    expect(await slots()).toEqual(before);

    // A direct upload that declared 100 bytes and stored 300: usage follows the change.
    const direct = readyMedia(owner, { status: 'pending', bytes: 100, sha256: null, retentionUntil: null, uploadExpiresAt: new Date(now.getTime() + 60_000) });
    expect((await repo.insert(direct)).inserted).toBe(true);
    expect(await total()).toEqual({ objects: 2, bytes: 600 });
    await repo.markReady(direct, { bytes: 300, sha256: sha256(), mimeType: 'image/png', retentionUntil: null }, now);
    expect(await total()).toEqual({ objects: 2, bytes: 800 });
  });

  it('refuses a status outside pending and ready', async () => {
    const id = newMediaId();
    await expect(
      db.writer.query(
        `INSERT INTO media_api.media_objects (id, storage_provider, storage_key, mime_type, created_by, status)
         VALUES ($1, 'local', 'k', 'image/png', 'contract-bad-status', 'deleted')`,
        [id],
      ),
    ).rejects.toThrow(/ck_media_objects_status/);
  });

  it('sends findByIds as a single SELECT … = ANY statement', async () => {
    const sql: string[] = [];
    const stop = db.onQuery((q) => sql.push(q));
    try {
      await new TypeOrmMediaRepository(db.writer).findByIds([newMediaId(), newMediaId(), newMediaId()]);
    } finally {
      stop();
    }
    expect(sql).toHaveLength(1);
    expect(sql[0]).toMatch(/^SELECT id, [a-z0-9_,\s]+ FROM media_api\.media_objects WHERE id = ANY\(\$1::varchar\[\]\)$/);
  });

  it('answers lookups made in the same turn with one statement, each caller getting only what it asked for', async () => {
    const repo = new TypeOrmMediaRepository(db.writer);
    const tag = randomBytes(6).toString('hex');
    const alice = [readyMedia(`batch-alice-${tag}`, { sha256: randomBytes(32).toString('hex') }), readyMedia(`batch-alice-${tag}`, { sha256: randomBytes(32).toString('hex') })];
    const bob = readyMedia(`batch-bob-${tag}`, { sha256: randomBytes(32).toString('hex') });
    for (const media of [...alice, bob]) expect((await repo.insert(media)).inserted).toBe(true);

    const sql: string[] = [];
    const stop = db.onQuery((q) => sql.push(q));
    let results: Array<Awaited<ReturnType<typeof repo.findByIds>>>;
    try {
      // As concurrent requests would: resolves of both owners, a serve and a lookup of nothing known.
      results = await Promise.all([
        repo.findByIds([alice[0].id, alice[1].id, newMediaId()]),
        repo.findByIds([bob.id]),
        repo.findById(alice[1].id).then((found) => (found ? [found] : [])),
        repo.findByIds([newMediaId()]),
      ]);
    } finally {
      stop();
    }
    expect(sql).toHaveLength(1);
    expect(sql[0]).toMatch(/WHERE id = ANY\(\$1::varchar\[\]\)$/);
    expect(results.map((rows) => rows.map((m) => m.id))).toEqual([[alice[0].id, alice[1].id], [bob.id], [alice[1].id], []]);
    expect(results[1][0]).toMatchObject({ ownerId: `batch-bob-${tag}`, sha256: bob.sha256, status: 'ready' });
    // Two callers asked for alice[1]: equal values, never one shared object.
    expect(results[2][0]).toEqual(results[0][1]);
    expect(results[2][0]).not.toBe(results[0][1]);
    expect(results[2][0].createdAt).not.toBe(results[0][1].createdAt);

    // The next turn's lookups go in a statement of their own.
    const later: string[] = [];
    const stopLater = db.onQuery((q) => later.push(q));
    try {
      expect((await repo.findById(bob.id))?.id).toBe(bob.id);
    } finally {
      stopLater();
    }
    expect(later).toHaveLength(1);
    expect(later[0]).toMatch(/WHERE id = \$1$/);
  });

  it('answers twin lookups made in the same turn with one statement, each pair getting its own earliest twin', async () => {
    const repo = new TypeOrmMediaRepository(db.writer);
    const tag = randomBytes(6).toString('hex');
    const hex = () => randomBytes(32).toString('hex');
    const [alice, bob] = [`twins-alice-${tag}`, `twins-bob-${tag}`];
    const bytes = hex();
    // Alice holds the bytes twice: stored as they are (later) and as the original of a re-encode
    // (earlier). The earlier one is the twin, as the one-pair statement would say.
    const stored = readyMedia(alice, { sha256: bytes, createdAt: new Date('2026-01-02T00:00:00Z') });
    const reencoded = readyMedia(alice, { sha256: hex(), originalSha256: bytes, createdAt: new Date('2026-01-01T00:00:00Z') });
    const bobs = readyMedia(bob, { sha256: bytes });
    for (const media of [stored, reencoded, bobs]) expect((await repo.insert(media)).inserted).toBe(true);

    const sql: string[] = [];
    const stop = db.onQuery((q) => sql.push(q));
    let found: Array<Awaited<ReturnType<typeof repo.findReadyByOwnerAndSha256>>>;
    try {
      found = await Promise.all([
        repo.findReadyByOwnerAndSha256(alice, bytes),
        repo.findReadyByOwnerAndSha256(bob, bytes),
        repo.findReadyByOwnerAndSha256(bob, reencoded.sha256!),
        repo.findReadyByOwnerAndSha256(alice, reencoded.sha256!),
      ]);
    } finally {
      stop();
    }
    expect(sql).toHaveLength(1);
    expect(sql[0]).toMatch(/FROM unnest\(\$1::varchar\[\], \$2::char\(64\)\[\]\) AS asked/);
    expect(found.map((media) => media?.id ?? null)).toEqual([reencoded.id, bobs.id, null, reencoded.id]);
    expect(found[0]).toEqual(await repo.findReadyByOwnerAndSha256(alice, bytes));
    expect(found[0]).not.toBe(found[3]);
  });

  it("fails only the lookup whose own key PostgreSQL refuses, not the others sharing its statement", async () => {
    const repo = new TypeOrmMediaRepository(db.writer);
    const mine = readyMedia(`batch-isolated-${randomBytes(6).toString('hex')}`, { sha256: randomBytes(32).toString('hex') });
    expect((await repo.insert(mine)).inserted).toBe(true);

    const sql: string[] = [];
    const stop = db.onQuery((q) => sql.push(q));
    let results: PromiseSettledResult<unknown>[];
    try {
      // The domain refuses such an owner id long before this; the repository must not let it spread.
      results = await Promise.allSettled([
        repo.findReadyByOwnerAndSha256(mine.ownerId, mine.sha256!),
        repo.findReadyByOwnerAndSha256('nul\u0000owner', mine.sha256!),
        repo.findReadyByOwnerAndSha256(mine.ownerId, randomBytes(32).toString('hex')),
      ]);
    } finally {
      stop();
    }
    expect(results[0]).toMatchObject({ status: 'fulfilled', value: { id: mine.id } });
    expect(results[1].status).toBe('rejected');
    expect(results[2]).toEqual({ status: 'fulfilled', value: null });
    expect(sql).toHaveLength(4); // the shared statement, then each caller alone
  });

  it('writes the inserts, then the markReady calls, made in one turn with one statement each, storing every field as a statement of its own does', async () => {
    const repo = new TypeOrmMediaRepository(db.writer);
    const tag = randomBytes(6).toString('hex');
    const hex = () => randomBytes(32).toString('hex');
    const now = new Date(Math.floor(Date.now() / 1000) * 1000);
    // As concurrent uploads of two owners would: data URLs (the bytes known) and a reservation.
    const rows = [
      { ...pendingMedia(`write-alice-${tag}`, now), sha256: hex(), bytes: 9_007_199_254, filename: 'ünïcode – shot.png' },
      { ...pendingMedia(`write-alice-${tag}`, now), sha256: hex(), originalSha256: hex(), mimeType: 'image/webp' as const },
      pendingMedia(`write-bob-${tag}`, now, 5_000),
    ];

    const sql: string[] = [];
    const timed: string[] = [];
    const stop = db.onQuery((q) => sql.push(q));
    const stopTimed = db.onStatement((name) => timed.push(name));
    let inserted: Awaited<ReturnType<typeof repo.insert>>[];
    try {
      inserted = await Promise.all(rows.map((row) => repo.insert(row)));
    } finally {
      stop();
      stopTimed();
    }
    expect(sql).toHaveLength(1);
    expect(sql[0]).toMatch(/^INSERT INTO media_api\.media_objects[\s\S]+FROM unnest\(/);
    expect(inserted).toEqual(rows.map((media) => ({ inserted: true, media })));
    for (const row of rows) expect(await repo.findById(row.id)).toEqual(row);

    const facts = rows.map((row, i) => ({ bytes: 1000 + i, sha256: hex(), mimeType: 'image/png' as const, retentionUntil: i === 0 ? null : new Date(now.getTime() + 86_400_000) }));
    const later = new Date(now.getTime() + 1000);
    const marks: string[] = [];
    const stopMarks = db.onQuery((q) => marks.push(q));
    const stopTimedMarks = db.onStatement((name) => timed.push(name));
    let ready: Awaited<ReturnType<typeof repo.markReady>>[];
    try {
      ready = await Promise.all(rows.map((row, i) => repo.markReady(row, facts[i], later)));
    } finally {
      stopMarks();
      stopTimedMarks();
    }
    // Timed under one name each, whatever the number of rows (the metric's label values stay few).
    expect(timed).toEqual(['media_insert_many', 'media_mark_ready_many']);
    expect(marks).toHaveLength(1);
    expect(marks[0]).toMatch(/^UPDATE media_api\.media_objects m[\s\S]+FROM unnest\(/);
    const expected = rows.map((row, i) => ({ ...row, ...facts[i], status: 'ready' as const, updatedAt: later, uploadExpiresAt: null }));
    expect(ready).toEqual(expected.map((media) => ({ inserted: true, media })));
    for (const media of expected) expect(await repo.findById(media.id)).toEqual(media);
    expect(await repo.usage(`write-alice-${tag}`)).toEqual({ objects: 2, bytes: 1000 + 1001 });
  });

  it('leaves a row claimed for deletion out of a shared markReady, and makes the others ready', async () => {
    const repo = new TypeOrmMediaRepository(db.writer);
    const owner = `write-claimed-${randomBytes(6).toString('hex')}`;
    const now = new Date();
    const [mine, claimed] = [pendingMedia(owner, now), pendingMedia(owner, now)];
    for (const row of [mine, claimed]) expect((await repo.insert(row)).inserted).toBe(true);
    expect(await repo.claimForDeletion(claimed.id, now)).not.toBeNull();

    const sql: string[] = [];
    const stop = db.onQuery((q) => sql.push(q));
    let results: PromiseSettledResult<Awaited<ReturnType<typeof repo.markReady>>>[];
    try {
      const facts = () => ({ bytes: 10, sha256: randomBytes(32).toString('hex'), mimeType: 'image/png' as const, retentionUntil: null });
      results = await Promise.allSettled([repo.markReady(mine, facts(), now), repo.markReady(claimed, facts(), now)]);
    } finally {
      stop();
    }
    expect(sql[0]).toMatch(/^UPDATE media_api\.media_objects m[\s\S]+FROM unnest\(/);
    expect(results[0]).toMatchObject({ status: 'fulfilled', value: { inserted: true, media: { id: mine.id, status: 'ready' } } });
    expect(results[1]).toMatchObject({ status: 'rejected', reason: { code: 'media_not_found' } });
    expect(await repo.findById(claimed.id)).toMatchObject({ status: 'pending', claimedAt: expect.any(Date) });
  });

  it('does not deadlock two shared inserts of the same owners made in different orders', async () => {
    // Each inserted row adds to its owner's usage slot of the connection (pg_backend_pid() % 16),
    // locked until the commit: 32 connections put two on some slot, and a statement writing
    // owner a then b beside one writing b then a on the other would wait for each other.
    const logs: string[] = [];
    const many = await openDatabase({ writeDsn: DSN, dataDir: '/nonexistent-not-used', poolSize: 32, logger: (m) => logs.push(m) });
    const blocker = new Client({ connectionString: DSN });
    await blocker.connect();
    const [a, z, b] = ['a', 'z', 'b'].map((name) => `deadlock-${randomBytes(4).toString('hex')}-${name}`);
    try {
      const repo = new TypeOrmMediaRepository(many.writer);
      // The blocker holds every usage slot of z, which each statement writes between a and b, so
      // that all 32 statements are under way, each holding its first owner's slot, when it lets go.
      await blocker.query(`INSERT INTO media_api.owner_usage_slots (owner_id, slot, objects, bytes) SELECT $1, s, 0, 0 FROM generate_series(0, 15) AS s`, [z]);
      await blocker.query('BEGIN');
      await blocker.query('UPDATE media_api.owner_usage_slots SET objects = objects WHERE owner_id = $1', [z]);
      const inserts: Array<Promise<unknown>> = [];
      // Each turn's statement writes a, then b, or the other way round, at random: some two on
      // one slot write them in opposite orders (one pair in two does; 32 connections make 16 pairs).
      for (let turn = 0; turn < 32; turn++) {
        for (const owner of Math.random() < 0.5 ? [b, z, a] : [a, z, b]) inserts.push(repo.insert(pendingMedia(owner, new Date())));
        await new Promise((resolve) => setImmediate(resolve));
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      await blocker.query('COMMIT');
      const results = await Promise.allSettled(inserts);
      expect(results.filter((result) => result.status === 'rejected')).toEqual([]);
      expect(logs.filter((line) => /deadlock/.test(line))).toEqual([]);
      expect(await repo.usage(a)).toEqual({ objects: 32, bytes: 0 });
    } finally {
      await blocker.query('DELETE FROM media_api.media_objects WHERE created_by = ANY($1)', [[a, z, b]]);
      await blocker.query('DELETE FROM media_api.owner_usage_slots WHERE owner_id = ANY($1)', [[a, z, b]]);
      await blocker.end();
      await many.close();
    }
  });

  it('does not deadlock two shared markReady updates making twins of one owner ready in different orders', async () => {
    // Each row made ready takes its (owner, sha256) entry of the unique index, until the commit:
    // a statement marking x then y ready beside one marking twins of them y then x would each
    // hold one entry and wait for the other's.
    const logs: string[] = [];
    const many = await openDatabase({ writeDsn: DSN, dataDir: '/nonexistent-not-used', poolSize: 32, logger: (m) => logs.push(m) });
    const blocker = new Client({ connectionString: DSN });
    await blocker.connect();
    const owner = `deadlock-twins-${randomBytes(4).toString('hex')}`;
    const [x, middle, y] = [0, 1, 2].map(() => randomBytes(32).toString('hex'));
    try {
      const repo = new TypeOrmMediaRepository(many.writer);
      const now = new Date();
      const turns = Array.from({ length: 32 }, () => [x, middle, y].map(() => pendingMedia(owner, now)));
      for (const rows of turns) await Promise.all(rows.map((row) => repo.insert(row)));
      // The blocker's uncommitted ready row holds the middle entry, which each statement takes
      // between x and y: all 32 are under way, each holding its first entry, when it rolls back.
      await blocker.query('BEGIN');
      await blocker.query(
        `INSERT INTO media_api.media_objects (id, storage_provider, storage_key, mime_type, bytes, sha256, created_by, status)
         VALUES ($1, 'local', $1, 'image/png', 0, $2, $3, 'ready')`,
        [newMediaId(), middle, owner],
      );
      const marks: Array<Promise<Awaited<ReturnType<typeof repo.markReady>>>> = [];
      for (const rows of turns) {
        // x, then y, or the other way round, at random: one statement in two crosses another.
        const hashes = Math.random() < 0.5 ? [y, middle, x] : [x, middle, y];
        rows.forEach((row, i) => marks.push(repo.markReady(row, { bytes: 0, sha256: hashes[i], mimeType: 'image/png', retentionUntil: null }, now)));
        await new Promise((resolve) => setImmediate(resolve));
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      await blocker.query('ROLLBACK');
      const results = await Promise.all(marks);
      expect(logs.filter((line) => /deadlock/.test(line))).toEqual([]);
      // One row per hash became ready; every other one is its twin.
      expect(results.filter((result) => result.inserted)).toHaveLength(3);
      expect(new Set(results.map((result) => (result.inserted ? result.media.id : result.existing.id))).size).toBe(3);
    } finally {
      await blocker.query('DELETE FROM media_api.media_objects WHERE created_by = $1', [owner]);
      await blocker.query('DELETE FROM media_api.owner_usage_slots WHERE owner_id = $1', [owner]);
      await blocker.end();
      await many.close();
    }
  });

  it("does not deadlock two shared markReady updates changing the bytes of the same owners' rows in different orders", async () => {
    // A direct upload may store other bytes than it declared: its markReady then changes its
    // owner's usage slot of the connection (pg_backend_pid() % 16), locked until the commit, as
    // an insert does (the insert's deadlock test above).
    const logs: string[] = [];
    const many = await openDatabase({ writeDsn: DSN, dataDir: '/nonexistent-not-used', poolSize: 32, logger: (m) => logs.push(m) });
    const blocker = new Client({ connectionString: DSN });
    await blocker.connect();
    const [a, z, b] = ['a', 'z', 'b'].map((name) => `deadlock-bytes-${randomBytes(4).toString('hex')}-${name}`);
    try {
      const repo = new TypeOrmMediaRepository(many.writer);
      const now = new Date();
      const turns = Array.from({ length: 32 }, () => (Math.random() < 0.5 ? [b, z, a] : [a, z, b]).map((owner) => pendingMedia(owner, now)));
      for (const rows of turns) await Promise.all(rows.map((row) => repo.insert(row)));
      // The blocker holds every usage slot of z, which each statement writes between a and b.
      await blocker.query(`INSERT INTO media_api.owner_usage_slots (owner_id, slot, objects, bytes) SELECT $1, s, 0, 0 FROM generate_series(0, 15) AS s ON CONFLICT DO NOTHING`, [z]);
      await blocker.query('BEGIN');
      await blocker.query('UPDATE media_api.owner_usage_slots SET objects = objects WHERE owner_id = $1', [z]);
      const marks: Array<Promise<Awaited<ReturnType<typeof repo.markReady>>>> = [];
      for (const rows of turns) {
        for (const row of rows) marks.push(repo.markReady(row, { bytes: 7, sha256: randomBytes(32).toString('hex'), mimeType: 'image/png', retentionUntil: null }, now));
        await new Promise((resolve) => setImmediate(resolve));
      }
      await new Promise((resolve) => setTimeout(resolve, 300));
      await blocker.query('COMMIT');
      const results = await Promise.all(marks);
      expect(logs.filter((line) => /deadlock/.test(line))).toEqual([]);
      expect(results.every((result) => result.inserted)).toBe(true);
      expect(await repo.usage(a)).toEqual({ objects: 32, bytes: 32 * 7 });
    } finally {
      await blocker.query('DELETE FROM media_api.media_objects WHERE created_by = ANY($1)', [[a, z, b]]);
      await blocker.query('DELETE FROM media_api.owner_usage_slots WHERE owner_id = ANY($1)', [[a, z, b]]);
      await blocker.end();
      await many.close();
    }
  });

  it('prepares the request-path statements once per connection, then only binds them', async () => {
    // One connection, so the session asked below is the one the repository used.
    const source = new DataSource({ type: 'postgres', url: DSN, poolSize: 1 });
    await source.initialize();
    try {
      const repo = new TypeOrmMediaRepository(source);
      const owner = `contract-prepared-${randomBytes(6).toString('hex')}`;
      for (let i = 0; i < 3; i++) {
        expect(await repo.findById(newMediaId())).toBeNull();
        expect(await repo.findByIds([newMediaId(), newMediaId()])).toEqual([]);
        expect(await repo.findReadyByOwnerAndSha256(owner, randomBytes(32).toString('hex'))).toBeNull();
      }
      const prepared: Array<{ name: string }> = await source.query('SELECT name FROM pg_prepared_statements ORDER BY name');
      expect(prepared.map((p) => p.name)).toEqual(['media_by_id', 'media_by_ids', 'media_twin']);
    } finally {
      await source.destroy();
    }
  });

  it('prepares one shared insert and one shared markReady per connection, whatever the sizes of the batches', async () => {
    // A statement text per batch size was a prepared statement per size on every connection,
    // each holding its plans for the connection's life: about 100 kB per row of the batch, so
    // half a gigabyte per connection once it had met every size up to 100.
    const source = new DataSource({ type: 'postgres', url: DSN, poolSize: 1 });
    await source.initialize();
    const owner = `contract-prepared-${randomBytes(6).toString('hex')}`;
    try {
      const repo = new TypeOrmMediaRepository(source);
      const planBytes = async () => {
        const [{ bytes }]: Array<{ bytes: string | null }> = await source.query(
          `SELECT sum(total_bytes) AS bytes FROM pg_backend_memory_contexts WHERE name IN ('CachedPlanSource', 'CachedPlan', 'CachedPlanQuery')`,
        );
        return Number(bytes ?? 0);
      };
      const before = await planBytes();
      for (const size of [2, 3, 5, 8, 13, 21, 34]) {
        const now = new Date();
        const rows = Array.from({ length: size }, () => pendingMedia(owner, now));
        await Promise.all(rows.map((row) => repo.insert(row)));
        const facts = () => ({ bytes: 0, sha256: randomBytes(32).toString('hex'), mimeType: 'image/png' as const, retentionUntil: null });
        const marked = await Promise.all(rows.map((row) => repo.markReady(row, facts(), now)));
        expect(marked.every((result) => result.inserted)).toBe(true);
      }
      const prepared: Array<{ name: string }> = await source.query(`SELECT name FROM pg_prepared_statements WHERE name LIKE 'media\\_%' ORDER BY name`);
      expect(prepared.map((p) => p.name)).toEqual(['media_insert_many', 'media_mark_ready_many']);
      expect(await planBytes()).toBeLessThan(before + 2_000_000);
    } finally {
      await source.query('DELETE FROM media_api.media_objects WHERE created_by = $1', [owner]);
      await source.destroy();
    }
  });

  it('sends every statement unnamed when prepared statements are off (for poolers in transaction mode)', async () => {
    const unprepared = await openDatabase({ writeDsn: DSN, dataDir: '/nonexistent-not-used', poolSize: 2, preparedStatements: false });
    try {
      const repo = new TypeOrmMediaRepository(unprepared.writer, unprepared.reader);
      await Promise.all([repo.findById(newMediaId()), repo.findByIds([newMediaId(), newMediaId()]), repo.usage('contract-unprepared')]);
      await Promise.all([repo.findById(newMediaId()), repo.findReadyByOwnerAndSha256('contract-unprepared', randomBytes(32).toString('hex'))]);
      for (let i = 0; i < 2; i++) {
        expect(await unprepared.writer.query('SELECT name FROM pg_prepared_statements')).toEqual([]);
      }
    } finally {
      await unprepared.close();
    }
  });

  it('does not log the unique violations it handles', async () => {
    const before = logs.length;
    const repo = new TypeOrmMediaRepository(db.writer);
    const owner = `contract-${randomBytes(6).toString('hex')}`;
    const sha = randomBytes(32).toString('hex');
    const now = new Date();
    const base = {
      ownerId: owner,
      storageProvider: 'local' as const,
      mimeType: 'image/png' as const,
      bytes: 1,
      originalSha256: null,
      pinned: false,
      filename: null,
      createdAt: now,
      updatedAt: now,
      retentionUntil: now,
    };
    try {
      const readyId = newMediaId();
      await repo.insert({ ...base, id: readyId, storageKey: readyId, sha256: sha, status: 'ready', uploadExpiresAt: null });
      const pendingId = newMediaId();
      await repo.insert({ ...base, id: pendingId, storageKey: pendingId, sha256: null, status: 'pending', uploadExpiresAt: now });
      const timed: Array<[string, boolean]> = [];
      const stop = db.onStatement((name, seconds, ok) => {
        expect(seconds).toBeGreaterThan(0);
        timed.push([name, ok]);
      });
      let result;
      try {
        result = await repo.markReady({ id: pendingId, ownerId: base.ownerId }, { bytes: 1, sha256: sha, mimeType: 'image/png', retentionUntil: now }, now);
      } finally {
        stop();
      }
      expect(result.inserted).toBe(false);
      // Timed by name, the handled conflict as a failed statement.
      expect(timed).toEqual([
        ['media_mark_ready', false],
        ['media_by_id', true],
        ['media_twin', true],
      ]);
      expect(logs.slice(before).filter((l) => l.startsWith('query failed'))).toEqual([]);
    } finally {
      await db.writer.query('DELETE FROM media_api.media_objects WHERE created_by = $1', [owner]);
    }
  });
});

/**
 * The per-request statements, in a database of their own: its table may be altered, and its
 * indexes and statistics are fresh, with statistics that lag behind the rows, as on a new
 * deployment or for an owner whose uploads arrive faster than autovacuum analyzes (the
 * benchmark's case). The shared test database's indexes carry the bloat of every earlier run,
 * which changes the planner's costs.
 */
describe('request-path statements, in a fresh database', () => {
  const own = openOwnDatabase('jan_plans');
  let db: Database;
  beforeAll(() => {
    db = own();
  });

  it('finds a twin and checks for one on insert with index lookups, however many objects the owner has and however stale the statistics', async () => {
    const repo = new TypeOrmMediaRepository(db.writer);
    const owner = `contract-many-${randomBytes(6).toString('hex')}`;
    await insertReadyRows(db, owner, 3000);
    try {
      const sql: Array<{ text: string; parameters: readonly unknown[] | undefined }> = [];
      const stop = db.onQuery((text, parameters) => sql.push({ text, parameters }));
      let found;
      try {
        found = await repo.findReadyByOwnerAndSha256(owner, randomBytes(32).toString('hex'));
      } finally {
        stop();
      }
      expect(found).toBeNull();
      expect(sql).toHaveLength(1);
      const [{ 'QUERY PLAN': plan }] = await db.writer.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql[0].text}`, [...(sql[0].parameters ?? [])]);
      // Every row the lookup touched, in any node of the plan: a handful, not the owner's 3,000.
      expect(rowsTouched(plan[0].Plan)).toBeLessThan(10);

      const known = await db.writer.query(`SELECT encode(sha256(($1 || 1234)::bytea), 'hex') AS sha`, [owner]);
      expect((await repo.findReadyByOwnerAndSha256(owner, known[0].sha))?.id).toBe(`jan_many_1234_${owner}`);

      // The insert's own check for a ready row re-encoded from these bytes, likewise.
      sql.length = 0;
      const stopInsert = db.onQuery((text, parameters) => sql.push({ text, parameters }));
      const id = newMediaId();
      try {
        const media = readyMedia(owner, { id, bytes: 1, sha256: randomBytes(32).toString('hex') });
        expect((await repo.insert(media)).inserted).toBe(true);
      } finally {
        stopInsert();
      }
      expect(sql).toHaveLength(1);
      const insertTouched = await rowsTouchedBy(db, sql[0], (parameters) => {
        parameters[0] = newMediaId();
        parameters[5] = randomBytes(32).toString('hex');
      });
      expect(insertTouched).toBeLessThan(10);
    } finally {
      await db.writer.query('DELETE FROM media_api.media_objects WHERE created_by = $1', [owner]);
    }
  });

  it('inserts unless a twin exists with index lookups, alone and shared, in lock order, however many objects the owner has', async () => {
    const repo = new TypeOrmMediaRepository(db.writer);
    const owner = `many-u-${randomBytes(4).toString('hex')}`;
    await insertReadyRows(db, owner, 3000);
    try {
      const now = new Date();
      const arriving = () => ({ ...pendingMedia(owner, now), sha256: randomBytes(32).toString('hex'), bytes: 1 });
      const sql: Array<{ text: string; parameters: readonly unknown[] | undefined }> = [];
      const stop = db.onQuery((text, parameters) => sql.push({ text, parameters }));
      const rows = [0, 1, 2].map(arriving);
      try {
        expect((await repo.insert(arriving(), undefined, { unlessTwin: true })).inserted).toBe(true);
        const shared = await Promise.all(rows.map((row) => repo.insert(row, undefined, { unlessTwin: true })));
        expect(shared.every((result) => result.inserted)).toBe(true);
      } finally {
        stop();
      }
      expect(sql).toHaveLength(2);
      expect(sql[1].text).toMatch(/FROM unnest\(/);
      // New rows under new ids and hashes: a handful of rows touched, not the owner's 3,000.
      expect(await rowsTouchedBy(db, sql[0], (parameters) => ((parameters[0] = newMediaId()), (parameters[5] = randomBytes(32).toString('hex'))))).toBeLessThan(10);
      const fresh = rows.map(arriving);
      const rename = (parameters: unknown[]) => {
        parameters[0] = fresh.map((row) => row.id);
        parameters[5] = fresh.map((row) => row.sha256);
      };
      expect(await rowsTouchedBy(db, sql[1], rename)).toBeLessThan(40);
      // The rows go in lock order (their sha256s, the owner being one), and PostgreSQL inserts them
      // in that order: RETURNING answers in it.
      const sent = sql[1].parameters as unknown[][];
      expect(sent[5]).toEqual([...sent[5]].sort());
      const backwards = [...fresh].sort((x, y) => (x.sha256! < y.sha256! ? 1 : -1));
      const runner = db.writer.createQueryRunner();
      await runner.startTransaction();
      try {
        const parameters = [...sent];
        parameters[0] = backwards.map((row) => row.id);
        parameters[5] = backwards.map((row) => row.sha256);
        const inserted: Array<{ id: string; inserted: boolean }> = await runner.query(sql[1].text, parameters);
        expect(inserted.map((row) => [row.id, row.inserted])).toEqual(backwards.map((row) => [row.id, true]));
      } finally {
        await runner.rollbackTransaction();
        await runner.release();
      }
    } finally {
      await db.writer.query('DELETE FROM media_api.media_objects WHERE created_by = $1', [owner]);
    }
  });

  it("writes the shared inserts and markReady updates with index lookups, however many objects the owner has and however stale the statistics", async () => {
    const repo = new TypeOrmMediaRepository(db.writer);
    const owner = `many-w-${randomBytes(4).toString('hex')}`;
    await insertReadyRows(db, owner, 3000);
    // And as many open reservations, which the updates must not walk either.
    await db.writer.query(
      `INSERT INTO media_api.media_objects (id, storage_provider, storage_key, mime_type, bytes, sha256, created_by, status, upload_expires_at)
       SELECT 'jan_open_' || i || '_' || $2, 'local', 'o' || i, 'image/png', 0, NULL, $1, 'pending', now() + interval '1 hour'
         FROM generate_series(1, 3000) AS i`,
      [owner, owner],
    );
    const touched = (statement: { text: string; parameters: readonly unknown[] | undefined }, change: (parameters: unknown[]) => void) =>
      rowsTouchedBy(db, statement, change);
    try {
      const now = new Date();
      const rows = [0, 1, 2].map(() => ({ ...pendingMedia(owner, now), sha256: randomBytes(32).toString('hex'), bytes: 1 }));
      const sql: Array<{ text: string; parameters: readonly unknown[] | undefined }> = [];
      const stop = db.onQuery((text, parameters) => sql.push({ text, parameters }));
      try {
        await Promise.all(rows.map((row) => repo.insert(row)));
      } finally {
        stop();
      }
      expect(sql).toHaveLength(1);
      expect(sql[0].text).toMatch(/FROM unnest\(/);
      // The same rows under new ids: a handful of rows touched, not the owner's 3,000.
      expect(await touched(sql[0], (parameters) => (parameters[0] = rows.map(() => newMediaId())))).toBeLessThan(20);

      const marks: Array<{ text: string; parameters: readonly unknown[] | undefined }> = [];
      const stopMarks = db.onQuery((text, parameters) => marks.push({ text, parameters }));
      try {
        const results = await Promise.all(rows.map((row) => repo.markReady(row, { bytes: 2, sha256: randomBytes(32).toString('hex'), mimeType: 'image/png', retentionUntil: null }, now)));
        expect(results.every((result) => result.inserted)).toBe(true);
      } finally {
        stopMarks();
      }
      expect(marks).toHaveLength(1);
      expect(marks[0].text).toMatch(/^UPDATE media_api\.media_objects m[\s\S]+FROM unnest\(/);
      // Again on pending rows (the ones just made ready are not): three new ones.
      const again = rows.map(() => pendingMedia(owner, now));
      for (const row of again) await repo.insert(row);
      const touchedByMarks = await touched(marks[0], (parameters) => {
        // An array per parameter: the ids first, the sha256s third.
        parameters[0] = again.map((row) => row.id);
        parameters[2] = again.map(() => randomBytes(32).toString('hex'));
      });
      expect(touchedByMarks).toBeLessThan(20);
      // The rows go in lock order (their sha256s, the owner being one), and PostgreSQL updates
      // them in that order, not in the order it finds them by id: RETURNING answers in it.
      const sent = marks[0].parameters as unknown[][];
      expect(sent[2]).toEqual([...sent[2]].sort());
      const backwards = [...again].sort((x, y) => (x.id < y.id ? 1 : -1));
      const runner = db.writer.createQueryRunner();
      await runner.startTransaction();
      try {
        const parameters = [...sent];
        parameters[0] = backwards.map((row) => row.id);
        parameters[2] = backwards.map(() => randomBytes(32).toString('hex'));
        const [updated]: [Array<{ id: string }>, number] = await runner.query(marks[0].text, parameters);
        expect(updated.map((row) => row.id)).toEqual(backwards.map((row) => row.id));
      } finally {
        await runner.rollbackTransaction();
        await runner.release();
      }
    } finally {
      await db.writer.query('DELETE FROM media_api.media_objects WHERE created_by = $1', [owner]);
    }
  });

  it("pages through one owner's objects reading only the page, not all of the owner's rows", async () => {
    const repo = new TypeOrmMediaRepository(db.writer);
    const tag = randomBytes(4).toString('hex');
    const owner = `contract-page-${tag}`;
    const idOf = (i: number) => `jan_page_${tag}_${String(i).padStart(5, '0')}_0`;
    // Ids sort by time, so an owner's ids interleave with everyone else's: here ten other
    // owners' objects between each two of this owner's.
    await db.writer.query(
      `INSERT INTO media_api.media_objects (id, storage_provider, storage_key, mime_type, bytes, created_by, status)
       SELECT 'jan_page_' || $2 || '_' || lpad(i::text, 5, '0') || '_' || k, 'local', 'k', 'image/png', 1,
              CASE WHEN k = 0 THEN $1 ELSE $1 || '-other-' || k END, 'ready'
         FROM generate_series(1, 3000) AS i, generate_series(0, 10) AS k`,
      [owner, tag],
    );
    // Statistics as autovacuum keeps them; with none, the planner guesses the owner has 3 rows.
    await db.writer.query('ANALYZE media_api.media_objects');
    try {
      const sql: Array<{ text: string; parameters: readonly unknown[] | undefined }> = [];
      const stop = db.onQuery((text, parameters) => sql.push({ text, parameters }));
      let page;
      try {
        page = await repo.list({ ownerId: owner, afterId: idOf(1000) as never, limit: 20 });
      } finally {
        stop();
      }
      expect(page.map((m) => m.id)).toEqual(Array.from({ length: 20 }, (_, i) => idOf(1001 + i)));
      expect(sql).toHaveLength(1);
      const [{ 'QUERY PLAN': plan }] = await db.writer.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql[0].text}`, [...(sql[0].parameters ?? [])]);
      expect(rowsTouched(plan[0].Plan)).toBeLessThan(100);
    } finally {
      await db.writer.query('DELETE FROM media_api.media_objects WHERE id LIKE $1', [`jan_page_${tag}_%`]);
    }
  });
  it('keeps its prepared statements working when a migration adds a column (a rolling deploy)', async () => {
    // One connection, so the statements prepared below are the ones executed after the change.
    const source = new DataSource({ type: 'postgres', url: (db.writer.options as { url: string }).url, poolSize: 1 });
    await source.initialize();
    try {
      const repo = new TypeOrmMediaRepository(source);
      const owner = `contract-rolling-${randomBytes(6).toString('hex')}`;
      const first = readyMedia(owner, { sha256: randomBytes(32).toString('hex') });
      expect((await repo.insert(first)).inserted).toBe(true);
      expect(await repo.findById(first.id)).toEqual(first);
      expect(await repo.findByIds([first.id, newMediaId()])).toEqual([first]);
      expect(await repo.findReadyByOwnerAndSha256(owner, first.sha256!)).toEqual(first);

      await db.writer.query('ALTER TABLE media_api.media_objects ADD COLUMN added_by_a_later_release text');
      try {
        const second = readyMedia(owner, { sha256: randomBytes(32).toString('hex') });
        expect((await repo.insert(second)).inserted).toBe(true);
        expect(await repo.findById(first.id)).toEqual(first);
        expect(await repo.findByIds([first.id, second.id])).toHaveLength(2);
        expect(await repo.findReadyByOwnerAndSha256(owner, second.sha256!)).toEqual(second);
      } finally {
        await db.writer.query('ALTER TABLE media_api.media_objects DROP COLUMN added_by_a_later_release');
        await db.writer.query('DELETE FROM media_api.media_objects WHERE created_by = $1', [owner]);
      }
    } finally {
      await source.destroy();
    }
  });

  it('takes a batch of expired objects without reading the whole backlog', async () => {
    const repo = new TypeOrmMediaRepository(db.writer);
    const tag = randomBytes(4).toString('hex');
    const owner = `contract-expired-${tag}`;
    // A backlog, as when retention is first turned on for an old table: 3,000 ready objects past
    // retention, 300 pending uploads past their deadline, and pinned objects that never expire.
    // And 2,000 rows claimed by earlier sweeps that storage refused to delete, claimed before any
    // of these expired: they come after all of them, and are not read through to find them.
    await db.writer.query(
      `INSERT INTO media_api.media_objects (id, storage_provider, storage_key, mime_type, bytes, created_by, status,
                                            upload_expires_at, claimed_at, created_at)
       SELECT 'jan_exp_' || $2 || '_stuck_' || lpad(i::text, 5, '0'), 'local', 'k', 'image/png', 1, $1, 'pending',
              now() - make_interval(secs => 9000 - i), now() - make_interval(secs => 9000 - i), now() - make_interval(days => 90)
         FROM generate_series(1, 2000) AS i`,
      [owner, tag],
    );
    await db.writer.query(
      `INSERT INTO media_api.media_objects (id, storage_provider, storage_key, mime_type, bytes, created_by, status, pinned,
                                            retention_until, upload_expires_at, created_at)
       SELECT 'jan_exp_' || $2 || '_' || lpad(i::text, 5, '0'), 'local', 'k', 'image/png', 1, $1,
              CASE WHEN i % 10 = 0 THEN 'pending' ELSE 'ready' END, i % 7 = 0,
              CASE WHEN i % 10 = 0 THEN NULL ELSE now() - make_interval(secs => 4000 - i) END,
              CASE WHEN i % 10 = 0 THEN now() - make_interval(secs => 4000 - i) END,
              now() - make_interval(days => 60)
         FROM generate_series(1, 3300) AS i`,
      [owner, tag],
    );
    await db.writer.query('ANALYZE media_api.media_objects');
    try {
      const sql: Array<{ text: string; parameters: readonly unknown[] | undefined }> = [];
      const stop = db.onQuery((text, parameters) => sql.push({ text, parameters }));
      let batch;
      try {
        batch = await repo.findExpired(new Date(), 100);
      } finally {
        stop();
      }
      // Those that expired first: i = 1, 2, 3, … (the smallest i expired longest ago), pinned ones skipped.
      const expected = Array.from({ length: 120 }, (_, k) => k + 1).filter((i) => i % 10 === 0 || i % 7 !== 0).slice(0, 100);
      expect(batch.map((m) => m.id)).toEqual(expected.map((i) => `jan_exp_${tag}_${String(i).padStart(5, '0')}`));
      expect(sql).toHaveLength(1);
      const [{ 'QUERY PLAN': plan }] = await db.writer.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql[0].text}`, [...(sql[0].parameters ?? [])]);
      // Three branches of at most 101 rows, each row counted at every level of the plan (about
      // 1,600); reading through the claimed rows to reach the unclaimed ones touched 3,700.
      expect(rowsTouched(plan[0].Plan)).toBeLessThan(2_000);
    } finally {
      await db.writer.query('DELETE FROM media_api.media_objects WHERE created_by = $1', [owner]);
    }
  });

  it("lists an expiry purge's objects through the sweep's indexes, not by reading the whole table", async () => {
    const repo = new TypeOrmMediaRepository(db.writer);
    const tag = randomBytes(4).toString('hex');
    const owner = `contract-purge-${tag}`;
    // 5,000 live objects, and a few of each kind a purge of expired objects takes: ready ones past
    // retention, pending ones past their deadline, rows claimed by an earlier deletion that failed.
    await insertReadyRows(db, owner, 5_000);
    await db.writer.query(
      `INSERT INTO media_api.media_objects (id, storage_provider, storage_key, mime_type, bytes, created_by, status,
                                            retention_until, upload_expires_at, claimed_at)
       SELECT 'jan_purge_' || $2 || '_' || lpad(i::text, 2, '0'), 'local', 'k', 'image/png', 1, $1,
              CASE WHEN i % 3 = 0 THEN 'ready' ELSE 'pending' END,
              CASE WHEN i % 3 = 0 THEN now() - interval '1 day' END,
              CASE WHEN i % 3 <> 0 THEN now() - interval '1 hour' END,
              CASE WHEN i % 3 = 2 THEN now() - interval '1 hour' END
         FROM generate_series(1, 30) AS i`,
      [owner, tag],
    );
    // VACUUM too: the rows earlier tests deleted would still be index entries to read past.
    await db.writer.query('VACUUM ANALYZE media_api.media_objects');
    try {
      const sql: Array<{ text: string; parameters: readonly unknown[] | undefined }> = [];
      const stop = db.onQuery((text, parameters) => sql.push({ text, parameters }));
      let listed;
      try {
        listed = await repo.list({ expiredAt: new Date(), limit: 100 });
      } finally {
        stop();
      }
      expect(listed.map((m) => m.id).filter((id) => id.includes(tag))).toEqual(Array.from({ length: 30 }, (_, i) => `jan_purge_${tag}_${String(i + 1).padStart(2, '0')}`));
      expect(sql).toHaveLength(1);
      const [{ 'QUERY PLAN': plan }] = await db.writer.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql[0].text}`, [...(sql[0].parameters ?? [])]);
      // The expired rows, a few times over; a scan of the table filters out the 5,000 live ones.
      expect(JSON.stringify(plan)).not.toContain('Seq Scan');
      expect(rowsTouched(plan[0].Plan)).toBeLessThan(1_000);
    } finally {
      await db.writer.query('DELETE FROM media_api.media_objects WHERE created_by = $1', [owner]);
    }
  });
});

describe('audit log', () => {
  const mediaIds: string[] = [];
  // Deleting is allowed (retention of the trail); only updates are refused.
  afterAll(() => db.writer.query('DELETE FROM media_api.media_audit_events WHERE media_id = ANY($1)', [mediaIds]));

  it('appends and lists the latest entries of one object, newest first', async () => {
    const audit = new TypeOrmAuditLog(db.writer);
    const mediaId = newMediaId();
    mediaIds.push(mediaId);
    const first = await audit.append({
      occurredAt: new Date('2030-01-01T00:00:00Z'),
      actorKind: 'user',
      actorId: 'u1',
      action: 'media.ingest',
      mediaId,
      outcome: 'success',
      requestId: 'req-1',
      traceId: 'a'.repeat(32),
      clientIp: '127.0.0.1',
      details: { deduped: false, bytes: 12 },
    });
    const second = await audit.append({
      actorKind: 'service',
      actorId: 'llm-api',
      action: 'media.read',
      mediaId,
      outcome: 'denied',
      reasonCode: 'forbidden',
      requestId: 'r'.repeat(500),
    });
    expect(first).toMatchObject({ actorKind: 'user', details: { deduped: false, bytes: 12 }, reasonCode: null });
    expect(second.requestId).toBe('r'.repeat(100));
    expect(second.occurredAt).toBeInstanceOf(Date);

    const recent = await audit.recent(mediaId, 10);
    expect(recent.map((e) => e.id)).toEqual([first.id, second.id]); // 2030 sorts after now
    expect(await audit.recent(mediaId, 1)).toEqual([first]);
    expect(await audit.recent(newMediaId(), 10)).toEqual([]);
  });

  it('appends a batch in one statement, every field as a single append would store it', async () => {
    const audit = new TypeOrmAuditLog(db.writer);
    const tricky = { s: 'a "quoted" \\ back\\slash, {brace} NULL é 🚀', n: [1, null, '{}'], 'key "q"': true };
    const mediaId = newMediaId();
    mediaIds.push(mediaId);
    const sql: string[] = [];
    const stop = db.onQuery((q) => sql.push(q));
    try {
      await audit.appendMany([
        { occurredAt: new Date('2031-01-01T00:00:00Z'), actorKind: 'user', actorId: 'u1', action: 'media.ingest', mediaId, outcome: 'success', traceId: 'b'.repeat(32), details: { bytes: 1 } },
        { actorKind: 'service', actorId: 'llm-api', action: 'media.read', mediaId, outcome: 'denied', reasonCode: 'forbidden', requestId: 'r'.repeat(500), clientIp: '::1' },
        { occurredAt: new Date('2030-06-01T00:00:00Z'), actorKind: 'admin', actorId: 'ops', action: 'media.pin', mediaId, outcome: 'success', details: null },
        // Values that an array literal would have to quote: they arrive as they were sent.
        { occurredAt: new Date('2029-01-01T00:00:00Z'), actorKind: 'user', actorId: 'NULL', action: 'media.delete', mediaId, outcome: 'failure', reasonCode: 'a,b}{"c"', details: tricky },
      ]);
      await audit.appendMany([]);
    } finally {
      stop();
    }
    expect(sql.filter((q) => /INSERT INTO media_api\.media_audit_events/.test(q))).toHaveLength(1);

    const recent = await audit.recent(mediaId, 10);
    expect(recent.map((e) => e.action)).toEqual(['media.ingest', 'media.pin', 'media.delete', 'media.read']);
    expect(recent[2]).toMatchObject({ actorId: 'NULL', reasonCode: 'a,b}{"c"', details: tricky });
    expect(recent[0]).toMatchObject({ actorKind: 'user', traceId: 'b'.repeat(32), details: { bytes: 1 }, reasonCode: null, requestId: null });
    expect(recent[3]).toMatchObject({ outcome: 'denied', reasonCode: 'forbidden', requestId: 'r'.repeat(100), clientIp: '::1', details: null });
    expect(recent[3]!.occurredAt).toBeInstanceOf(Date);
  });

  it('splits a batch larger than one statement allows', async () => {
    const audit = new TypeOrmAuditLog(db.writer);
    const mediaId = newMediaId();
    mediaIds.push(mediaId);
    const entries = Array.from({ length: 1_201 }, (_, i) => ({ actorKind: 'system' as const, actorId: 'bulk', action: 'media.expire', mediaId, outcome: 'success' as const, details: { i } }));
    await audit.appendMany(entries);
    const [{ count }] = await db.writer.query('SELECT count(*)::int AS count FROM media_api.media_audit_events WHERE media_id = $1', [mediaId]);
    expect(count).toBe(1_201);
  });

  it('refuses updates', async () => {
    const audit = new TypeOrmAuditLog(db.writer);
    const mediaId = newMediaId();
    mediaIds.push(mediaId);
    const entry = await audit.append({ actorKind: 'system', actorId: 'retention', action: 'media.delete', mediaId, outcome: 'success' });
    await expect(
      db.writer.query(`UPDATE media_api.media_audit_events SET outcome = 'failure' WHERE id = $1`, [entry.id]),
    ).rejects.toThrow(/append-only/);
  });
});

/**
 * Pruning deletes by age across the whole trail, so it runs in a database of its own: in the
 * shared one it could take entries another test file, running at the same time, still reads.
 */
describe('audit log retention, in a database of its own', () => {
  const own = openOwnDatabase('jan_audit');
  let db: Database;
  beforeAll(() => {
    db = own();
  });

  it('prunes entries older than a time, oldest first, a batch at a time', async () => {
    const audit = new TypeOrmAuditLog(db.writer);
    const mediaId = newMediaId();
    const at = (year: number) => new Date(`${year}-01-01T00:00:00Z`);
    await audit.appendMany(
      [1981, 1983, 1982, 1985, 1984, 1995].map((year) => ({ occurredAt: at(year), actorKind: 'system' as const, actorId: `y${year}`, action: 'media.expire', mediaId, outcome: 'success' as const })),
    );
    const years = async () => (await audit.recent(mediaId)).map((e) => e.actorId).sort();

    expect(await audit.prune(at(1985), 2)).toBe(2);
    expect(await years()).toEqual(['y1983', 'y1984', 'y1985', 'y1995']);
    expect(await audit.prune(at(1985), 100)).toBe(2);
    expect(await years()).toEqual(['y1985', 'y1995']);
    expect(await audit.prune(at(1985), 100)).toBe(0);
    expect(await audit.prune(at(1990), 0)).toBe(0);
    expect(await years()).toEqual(['y1985', 'y1995']);
  });
});

/**
 * Usage is kept in one slot row per connection (migration 1764000000004): one owner's inserts on
 * different connections do not wait on each other, limited inserts still run one at a time.
 */
describe('owner usage, in a database of its own', () => {
  const own = openOwnDatabase('jan_usage', 10);
  let db: Database;
  beforeAll(() => {
    db = own();
  });

  const sha = () => randomBytes(32).toString('hex');
  const insertRow = (client: Client, owner: string, bytes: number) =>
    client.query(
      `INSERT INTO media_api.media_objects (id, storage_provider, storage_key, mime_type, bytes, sha256, created_by, status)
       VALUES ($1, 'local', 'k', 'image/png', $2, $3, $4, 'ready')`,
      [newMediaId(), bytes, sha(), owner],
    );

  /** Two sessions of their own whose backends write different slots. */
  async function twoSlots(): Promise<[Client, Client]> {
    const dsn = (db.writer.options as { url: string }).url;
    const opened: Client[] = [];
    try {
      for (;;) {
        const client = new Client({ connectionString: dsn });
        await client.connect();
        opened.push(client);
        const [first] = opened;
        const pid = (c: Client) => (c as unknown as { processID: number }).processID;
        if (client !== first && pid(client) % 16 !== pid(first) % 16) {
          for (const other of opened.slice(1, -1)) await other.end();
          return [first, client];
        }
      }
    } catch (error) {
      await Promise.all(opened.map((c) => c.end()));
      throw error;
    }
  }

  it("lets two connections insert for one owner at once, and sums the owner's slots", async () => {
    const owner = `usage-${randomBytes(6).toString('hex')}`;
    const [a, b] = await twoSlots();
    try {
      await a.query('BEGIN');
      await insertRow(a, owner, 100);
      // With one usage row per owner this insert waited for the first transaction to end.
      await b.query(`SET lock_timeout = '5s'`);
      await b.query('BEGIN');
      await insertRow(b, owner, 23);
      await b.query('COMMIT');
      await a.query('COMMIT');
    } finally {
      await Promise.all([a.end(), b.end()]);
    }
    const repo = new TypeOrmMediaRepository(db.writer);
    expect(await repo.usage(owner)).toEqual({ objects: 2, bytes: 123 });
    const slots: Array<{ n: string }> = await db.writer.query('SELECT count(*) AS n FROM media_api.owner_usage_slots WHERE owner_id = $1', [owner]);
    expect(Number(slots[0].n)).toBe(2);
    expect(await repo.usage(`${owner}-nobody`)).toEqual({ objects: 0, bytes: 0 });
  });

  it('still lets exactly the quota through when limited inserts of one owner race on many connections', async () => {
    const repo = new TypeOrmMediaRepository(db.writer);
    // Every connection of the pool open first, so that the race is between connections.
    await Promise.all(Array.from({ length: 10 }, () => db.writer.query('SELECT pg_sleep(0.05)')));
    const limits = { maxObjects: 4, maxBytes: 0 };
    for (let round = 0; round < 3; round++) {
      const owner = `usage-${randomBytes(6).toString('hex')}`;
      const results = await Promise.allSettled(Array.from({ length: 20 }, () => repo.insert(readyMedia(owner, { sha256: sha(), bytes: 7 }), limits)));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(4);
      const refused = results.flatMap((r) => (r.status === 'rejected' ? [(r.reason as { code?: string }).code] : []));
      expect(refused).toEqual(Array(16).fill('quota_exceeded'));
      expect(await repo.usage(owner)).toEqual({ objects: 4, bytes: 28 });
      const slots: Array<{ n: string }> = await db.writer.query('SELECT count(*) AS n FROM media_api.owner_usage_slots WHERE owner_id = $1', [owner]);
      expect(Number(slots[0].n)).toBeGreaterThan(1);
    }
  });

  it('folds the slots back into one row per owner when the migration is undone, and splits again', async () => {
    const repo = new TypeOrmMediaRepository(db.writer);
    const owner = `usage-${randomBytes(6).toString('hex')}`;
    const [a, b] = await twoSlots();
    try {
      await insertRow(a, owner, 5);
      await insertRow(b, owner, 6);
      await insertRow(b, owner, 7);
    } finally {
      await Promise.all([a.end(), b.end()]);
    }
    const rowsOf = async (table: string) => (await db.writer.query(`SELECT * FROM media_api.${table} WHERE owner_id = $1`, [owner])) as Array<Record<string, unknown>>;
    expect(await rowsOf('owner_usage_slots')).toHaveLength(2);
    // What the previous release reads: one row of totals, as from its table.
    expect(await rowsOf('owner_usage')).toEqual([expect.objectContaining({ owner_id: owner, objects: '3', bytes: '18' })]);

    // Back to before 1764000000004: the later ones go first.
    await undoThrough(db, 'ShardedOwnerUsage1764000000004');
    const folded = await rowsOf('owner_usage');
    expect(folded).toHaveLength(1);
    expect(folded[0]).toMatchObject({ objects: '3', bytes: '18' });
    expect(folded[0]).not.toHaveProperty('slot');
    expect(await repo.usage(owner)).toEqual({ objects: 3, bytes: 18 });

    await db.writer.runMigrations({ transaction: 'each' });
    expect(await rowsOf('owner_usage_slots')).toEqual([expect.objectContaining({ owner_id: owner, slot: 0, objects: '3', bytes: '18' })]);
    const c = await twoSlots();
    try {
      await insertRow(c[1], owner, 9);
    } finally {
      await Promise.all(c.map((client) => client.end()));
    }
    expect(await repo.usage(owner)).toEqual({ objects: 4, bytes: 27 });
  });
});

/** Undoes the newest migrations, newest first, up to and including `name`. */
async function undoThrough(db: Database, name: string): Promise<void> {
  for (;;) {
    const [last] = (await db.writer.query('SELECT name FROM media_api.migrations ORDER BY id DESC LIMIT 1')) as Array<{ name: string }>;
    if (!last) throw new Error(`${name} is not applied`);
    await db.writer.undoLastMigration({ transaction: 'each' });
    if (last.name === name) return;
  }
}

/** The usage triggers (migration 1764000000006), undone and done again on a database of its own. */
describe('usage trigger on change, in a database of its own', () => {
  const own = openOwnDatabase('jan_usage_trigger');
  let db: Database;
  beforeAll(() => {
    db = own();
  });
  const triggers = async () =>
    ((await db.writer.query(
      `SELECT tgname, pg_get_triggerdef(oid) AS def FROM pg_trigger WHERE tgrelid = 'media_api.media_objects'::regclass AND NOT tgisinternal ORDER BY tgname`,
    )) as Array<{ tgname: string; def: string }>).map((t) => `${t.tgname}: ${t.def.replace(/^.* (AFTER .*?) ON .*? FOR EACH ROW(.*?) EXECUTE .*$/, '$1$2')}`);

  it('splits the trigger so that updates run it only when bytes or owner change; down restores the one trigger', async () => {
    const split = [
      'trg_media_objects_usage: AFTER INSERT OR DELETE',
      'trg_media_objects_usage_update: AFTER UPDATE OF bytes, created_by WHEN (((old.bytes IS DISTINCT FROM new.bytes) OR ((old.created_by)::text IS DISTINCT FROM (new.created_by)::text)))',
    ];
    expect(await triggers()).toEqual(split);
    await undoThrough(db, 'UsageTriggerOnChange1764000000006');
    expect(await triggers()).toEqual(['trg_media_objects_usage: AFTER INSERT OR DELETE OR UPDATE OF bytes, created_by']);
    await db.writer.runMigrations({ transaction: 'each' });
    expect(await triggers()).toEqual(split);
  });
});

/** First-use copies (migration 1764000000007), undone and done again on a database of its own. */
describe('first-use copies, in a database of its own', () => {
  const own = openOwnDatabase('jan_firstuse');
  let db: Database;
  beforeAll(() => {
    db = own();
  });
  const dedupeIndex = async () =>
    ((await db.writer.query(`SELECT indexdef FROM pg_indexes WHERE schemaname = 'media_api' AND indexname = 'uq_media_objects_owner_sha256_ready'`)) as Array<{
      indexdef: string;
    }>)[0]?.indexdef;

  it('exempts rows made ready beside a twin from the dedupe index; down restores the index once no such pair is left', async () => {
    expect(await dedupeIndex()).toMatch(/AND \(NOT dedupe_exempt\)/);
    const repo = new TypeOrmMediaRepository(db.writer);
    const owner = `firstuse-${randomBytes(6).toString('hex')}`;
    const sha = randomBytes(32).toString('hex');
    const twin = readyMedia(owner, { sha256: sha });
    expect((await repo.insert(twin)).inserted).toBe(true);
    const reservation = readyMedia(owner, { status: 'pending', sha256: null, bytes: 0, uploadExpiresAt: new Date(Date.now() + 60_000) });
    expect((await repo.insert(reservation)).inserted).toBe(true);
    const facts = { bytes: 10, sha256: sha, mimeType: 'image/png' as const, retentionUntil: null };
    expect((await repo.markReady(reservation, facts, new Date(), undefined, { besideTwin: true })).inserted).toBe(true);

    // The previous index cannot hold two ready rows of one owner and sha256: down refuses until one goes.
    await expect(undoThrough(db, 'FirstUseCopies1764000000007')).rejects.toThrow(/uq_media_objects_owner_sha256_ready|duplicate key|could not create unique index/);
    expect(await repo.delete(reservation.id)).toBe(true);
    await undoThrough(db, 'FirstUseCopies1764000000007');
    expect(await dedupeIndex()).toMatch(/WHERE \(\(status\)::text = 'ready'::text\)$/);

    await db.writer.runMigrations({ transaction: 'each' });
    expect(await dedupeIndex()).toMatch(/AND \(NOT dedupe_exempt\)/);
    expect(await repo.delete(twin.id)).toBe(true);
  });
});

/** The lean write indexes (migration 1764000000008), on a database of its own. */
describe('lean write indexes, in a database of its own', () => {
  const own = openOwnDatabase('jan_lean');
  let db: Database;
  beforeAll(() => {
    db = own();
  });
  const indexes = async () =>
    ((await db.writer.query(`SELECT indexname FROM pg_indexes WHERE schemaname = 'media_api' AND tablename = 'media_objects' ORDER BY indexname`)) as Array<{
      indexname: string;
    }>).map((i) => i.indexname);
  /** Index entries a row version adds: the indexes whose predicates it matches (every index is on columns it has). */
  const entriesFor = async (id: string) => {
    const defs = (await db.writer.query(
      `SELECT indexname, pg_get_expr(i.indpred, i.indrelid) AS predicate
         FROM pg_indexes x JOIN pg_class c ON c.relname = x.indexname JOIN pg_index i ON i.indexrelid = c.oid
        WHERE x.schemaname = 'media_api' AND x.tablename = 'media_objects'`,
    )) as Array<{ indexname: string; predicate: string | null }>;
    let entries = 0;
    for (const def of defs) {
      const [match] = await db.writer.query(`SELECT (${def.predicate ?? 'true'}) IS TRUE AS hit FROM media_api.media_objects WHERE id = $1`, [id]);
      if (match.hit) entries++;
    }
    return entries;
  };

  it('puts a new upload in 8 index entries (pending, then ready), not 13; down restores the indexes it replaced', async () => {
    const repo = new TypeOrmMediaRepository(db.writer);
    const owner = `lean-${randomBytes(6).toString('hex')}`;
    const sha = randomBytes(32).toString('hex');
    const pending = readyMedia(owner, { status: 'pending', sha256: sha, bytes: 10, retentionUntil: null, uploadExpiresAt: new Date(Date.now() + 60_000) });
    expect((await repo.insert(pending)).inserted).toBe(true);
    const atInsert = await entriesFor(pending.id);
    const facts = { bytes: 10, sha256: sha, mimeType: 'image/png' as const, retentionUntil: new Date(Date.now() + 86_400_000) };
    expect((await repo.markReady(pending, facts, new Date())).inserted).toBe(true);
    const atReady = await entriesFor(pending.id);
    expect([atInsert, atReady]).toEqual([4, 4]);

    await undoThrough(db, 'LeanWriteIndexes1764000000008');
    const before = await indexes();
    expect(before).toEqual(expect.arrayContaining(['idx_media_objects_sha256', 'idx_media_objects_created_at', 'idx_media_objects_retention_until', 'idx_media_objects_pending_deadline']));
    expect(before).not.toEqual(expect.arrayContaining(['idx_media_objects_ready_retention']));
    expect(before.filter((name) => /^idx_media_objects_(claimed_deadline|open_owner_sha256)$/.test(name))).toEqual([]);
    // The same ready row in the indexes as they were: 6 entries (and 7 for its pending version: 13 per upload).
    expect(await entriesFor(pending.id)).toBe(6);

    await db.writer.runMigrations({ transaction: 'each' });
    expect(await entriesFor(pending.id)).toBe(4);
    expect(await repo.delete(pending.id)).toBe(true);
  });

  it("reads a quota's pending twin through the open uploads' index, however many objects the owner has", async () => {
    const repo = new TypeOrmMediaRepository(db.writer);
    const owner = `lean-twin-${randomBytes(6).toString('hex')}`;
    await insertReadyRows(db, owner, 3_000);
    // And 3,000 uploads in flight (open reservations, pending rows), which the unclaimed-deadline
    // index holds too: the check must not read through them.
    await db.writer.query(
      `INSERT INTO media_api.media_objects (id, storage_provider, storage_key, mime_type, bytes, sha256, created_by, status, upload_expires_at)
       SELECT 'jan_open_' || i || '_' || $1, 'local', 'k' || i, 'image/png', 10, encode(sha256(('open' || $1 || i)::bytea), 'hex'), $1, 'pending',
              now() + interval '1 hour'
         FROM generate_series(1, 3000) AS i`,
      [owner],
    );
    await db.writer.query('ANALYZE media_api.media_objects');
    try {
      const sha = randomBytes(32).toString('hex');
      const deadline = new Date(Date.now() + 60_000);
      expect((await repo.insert(readyMedia(owner, { status: 'pending', sha256: sha, bytes: 10, retentionUntil: null, uploadExpiresAt: deadline }))).inserted).toBe(true);
      const sql: Array<{ text: string; parameters: readonly unknown[] | undefined }> = [];
      const stop = db.onQuery((text, parameters) => sql.push({ text, parameters }));
      try {
        // Past the limit: let through only because a pending twin already counts these bytes.
        const twin = readyMedia(owner, { status: 'pending', sha256: sha, bytes: 10, retentionUntil: null, uploadExpiresAt: deadline });
        expect((await repo.insert(twin, { maxObjects: 1, maxBytes: 0 })).inserted).toBe(true);
      } finally {
        stop();
      }
      const check = sql.find((q) => /status = 'pending'\s+AND claimed_at IS NULL AND upload_expires_at > \$4/.test(q.text));
      expect(check).toBeDefined();
      const [{ 'QUERY PLAN': plan }] = await db.writer.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${check!.text}`, [...(check!.parameters ?? [])]);
      expect(JSON.stringify(plan)).toContain('idx_media_objects_open_owner_sha256');
      expect(rowsTouched(plan[0].Plan)).toBeLessThan(10);
    } finally {
      await db.writer.query('DELETE FROM media_api.media_objects WHERE created_by = $1', [owner]);
    }
  });
});

/** The claim marker (migration 1764000000005), undone and done again on a database of its own. */
describe('claim marker, in a database of its own', () => {
  const own = openOwnDatabase('jan_claim');
  let db: Database;
  beforeAll(() => {
    db = own();
  });

  const columns = async () =>
    ((await db.writer.query(
      `SELECT column_name FROM information_schema.columns WHERE table_schema = 'media_api' AND table_name = 'media_objects' AND column_name = 'claimed_at'`,
    )) as unknown[]).length;
  const index = async () =>
    ((await db.writer.query(`SELECT indexdef FROM pg_indexes WHERE schemaname = 'media_api' AND indexname = 'idx_media_objects_unclaimed_deadline'`)) as Array<{
      indexdef: string;
    }>)[0]?.indexdef;

  it('adds a nullable column and a partial index, which down drops, leaving claimed rows closed reservations', async () => {
    expect(await columns()).toBe(1);
    expect(await index()).toMatch(/\(upload_expires_at, id\) WHERE \(\(\(status\)::text <> 'ready'::text\) AND \(claimed_at IS NULL\)\)/);
    const repo = new TypeOrmMediaRepository(db.writer);
    const owner = `claim-${randomBytes(6).toString('hex')}`;
    const claimedAt = new Date(Date.now() - 60_000);
    const row = readyMedia(owner, { sha256: randomBytes(32).toString('hex'), retentionUntil: new Date(Date.now() - 120_000) });
    expect((await repo.insert(row)).inserted).toBe(true);
    expect(await repo.claimForDeletion(row.id, claimedAt, { onlyIfExpired: true })).not.toBeNull();
    const [marked] = await db.writer.query('SELECT claimed_at FROM media_api.media_objects WHERE id = $1', [row.id]);
    expect(marked.claimed_at).toEqual(claimedAt);

    await undoThrough(db, 'ClaimMarker1764000000005');
    expect(await columns()).toBe(0);
    expect(await index()).toBeUndefined();
    // What the previous release sees: a closed reservation, which its sweep deletes and its pin refuses.
    const [closed] = await db.writer.query('SELECT status, upload_expires_at FROM media_api.media_objects WHERE id = $1', [row.id]);
    expect(closed).toEqual({ status: 'pending', upload_expires_at: claimedAt });

    await db.writer.runMigrations({ transaction: 'each' });
    expect(await columns()).toBe(1);
    expect(await index()).toBeDefined();
    // The marker is gone with the column: the row is recognised by its deadline, as before.
    expect(await repo.setPinned(row.id, true, null, new Date())).toBeNull();
    expect((await repo.findExpired(new Date(), 10)).map((m) => m.id)).toEqual([row.id]);
    expect(await repo.claimForDeletion(row.id, new Date(), { onlyIfExpired: true })).not.toBeNull();
    expect(await repo.delete(row.id)).toBe(true);
  });

  it("keeps the previous release's statements working on the new schema", async () => {
    const repo = new TypeOrmMediaRepository(db.writer);
    const owner = `claim-old-${randomBytes(6).toString('hex')}`;
    const row = readyMedia(owner, { sha256: randomBytes(32).toString('hex'), retentionUntil: new Date(Date.now() - 120_000) });
    // The previous release's insert names its columns; claimed_at stays null.
    await db.writer.query(
      `INSERT INTO media_api.media_objects
         (id, storage_provider, storage_key, mime_type, bytes, sha256, created_by, retention_until,
          created_at, updated_at, original_sha256, status, pinned, filename, upload_expires_at)
       VALUES ($1, 'local', 'k', 'image/png', 1, $2, $3, $4, now(), now(), NULL, 'ready', false, NULL, NULL)`,
      [row.id, row.sha256, owner, row.retentionUntil],
    );
    // Its claim does not set the marker; the new release still recognises the claim by its clock.
    const claimedAt = new Date(Date.now() - 60_000);
    const [, claimed] = await db.writer.query(
      `UPDATE media_api.media_objects SET status = 'pending', upload_expires_at = $2, updated_at = $2
        WHERE id = $1 AND ((status = 'ready' AND NOT pinned AND retention_until <= $2) OR (status = 'pending' AND upload_expires_at <= $2))`,
      [row.id, claimedAt],
    );
    expect(claimed).toBe(1);
    expect(await repo.setPinned(row.id, true, null, new Date())).toBeNull();
    expect((await repo.findExpired(new Date(), 10)).map((m) => m.id)).toEqual([row.id]);
    // Its sweep's statement reads every column, the new one included, and still finds the row.
    const old: unknown[] = await db.writer.query(
      `SELECT * FROM (
         (SELECT *, upload_expires_at AS expired_at FROM media_api.media_objects
           WHERE status = 'pending' AND upload_expires_at <= $1 ORDER BY upload_expires_at, id LIMIT $2)
       ) expired ORDER BY expired_at, id LIMIT $2`,
      [new Date(), 10],
    );
    expect(old).toHaveLength(1);
    expect(await repo.delete(row.id)).toBe(true);
  });
});

/**
 * Work that needs a database of its own (a first migration, an earlier table): a throwaway
 * database on the same server, dropped afterwards, so the shared one is never disturbed.
 */
describe('in a throwaway database', () => {
  let scratch: ScratchDatabase;
  let scratchDsn: string;

  beforeAll(async () => {
    scratch = await createScratchDatabase('jan_persistence');
    scratchDsn = scratch.dsn;
  });

  afterAll(async () => {
    await scratch?.drop();
  });

  it('upgrades the earlier table, with several processes migrating at once', async () => {
    const legacy = new Client({ connectionString: scratchDsn });
    await legacy.connect();
    const legacyId = 'jan_01hqr8v9k2x3f4g5h6j7k8m9n0';
    const sharedSha = 'c'.repeat(64);
    try {
      // The earlier service's table, with its global dedupe as a unique index on sha256.
      await legacy.query(`
        CREATE SCHEMA media_api;
        CREATE TABLE media_api.media_objects (
          id varchar(40) PRIMARY KEY, storage_provider varchar(16) NOT NULL, storage_key text NOT NULL,
          mime_type text NOT NULL, bytes bigint NOT NULL, sha256 char(64) NOT NULL, created_by text,
          retention_until timestamptz NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);
        CREATE UNIQUE INDEX media_objects_sha256_key ON media_api.media_objects (sha256);
        CREATE INDEX idx_media_objects_created_by ON media_api.media_objects (created_by);`);
      await legacy.query(
        `INSERT INTO media_api.media_objects VALUES ($1, 's3', 'images/x.png', 'image/png', 42, $2, 'u1',
           '2031-01-01T00:00:00Z', '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z')`,
        [legacyId, sharedSha],
      );
    } finally {
      await legacy.end();
    }

    const opened = await Promise.allSettled(
      Array.from({ length: 4 }, () => openDatabase({ writeDsn: scratchDsn, dataDir: '/nonexistent-not-used', poolSize: 2 })),
    );
    const dbs = opened.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []));
    try {
      expect(opened.filter((o) => o.status === 'rejected')).toEqual([]);
      const applied: Array<{ name: string }> = await dbs[0].writer.query('SELECT name FROM media_api.migrations');
      expect(applied.map((m) => m.name).sort()).toEqual(MIGRATIONS.map((m) => m.name).sort());

      const repo = new TypeOrmMediaRepository(dbs[0].writer);
      const old = await repo.findById(legacyId as never);
      expect(old).toMatchObject({ id: legacyId, ownerId: 'u1', status: 'ready', pinned: false, bytes: 42, sha256: sharedSha, originalSha256: null });
      expect(await repo.findReadyByOwnerAndSha256('u1', sharedSha)).toEqual(old);

      // Another owner may now hold the same bytes; the same owner still may not.
      const now = new Date();
      const row = (id: string, ownerId: string) => ({
        id: id as never, ownerId, storageProvider: 'local' as const, storageKey: id, mimeType: 'image/png' as const,
        bytes: 42, sha256: sharedSha, originalSha256: null, status: 'ready' as const, pinned: false, filename: null,
        createdAt: now, updatedAt: now, retentionUntil: now, uploadExpiresAt: null,
      });
      expect((await repo.insert(row(newMediaId(), 'u2'))).inserted).toBe(true);
      expect(await repo.insert(row(newMediaId(), 'u1'))).toEqual({ inserted: false, existing: old });
    } finally {
      await Promise.all(dbs.map((d) => d.close()));
    }
  });

  it('reads from a replica, and asks the writer for ids the replica has not seen yet', async () => {
    // The scratch database plays a replica that lags: migrated, but without the writer's rows.
    await (await openDatabase({ writeDsn: scratchDsn, dataDir: '/nonexistent-not-used', poolSize: 2 })).close();
    const replicated = await openDatabase({ writeDsn: DSN, readDsn: scratchDsn, dataDir: '/nonexistent-not-used', poolSize: 2 });
    const sql: Array<{ on: string; q: string }> = [];
    const owner = `contract-${randomBytes(6).toString('hex')}`;
    try {
      expect(replicated.reader).not.toBe(replicated.writer);
      const repo = new TypeOrmMediaRepository(replicated.writer, replicated.reader);
      const now = new Date();
      const m = {
        id: newMediaId(), ownerId: owner, storageProvider: 'local' as const, storageKey: 'k', mimeType: 'image/png' as const,
        bytes: 5, sha256: randomBytes(32).toString('hex'), originalSha256: null, status: 'ready' as const, pinned: false,
        filename: null, createdAt: now, updatedAt: now, retentionUntil: now, uploadExpiresAt: null,
      };
      await repo.insert(m);

      const stop = replicated.onQuery((q) => sql.push({ on: 'any', q }));
      expect(await repo.findById(m.id)).toEqual(m);
      expect(sql).toHaveLength(2); // replica miss, then the writer
      sql.length = 0;
      expect(await repo.findByIds([m.id, newMediaId()])).toEqual([m]);
      expect(sql).toHaveLength(2);
      stop();

      // The dedupe decision is the writer's: a twin unknown to the replica is still found.
      const twin = { ...m, id: newMediaId() };
      expect(await repo.insert(twin)).toEqual({ inserted: false, existing: m });
      // Whereas a plain lookup is allowed to be stale.
      expect(await repo.findReadyByOwnerAndSha256(owner, m.sha256)).toBeNull();
    } finally {
      await replicated.writer.query('DELETE FROM media_api.media_objects WHERE created_by = $1', [owner]);
      await replicated.close();
    }
  });

  it('confirms a twin found on a replica on the writer: one the writer deleted, or claimed for deletion, is no twin', async () => {
    // The scratch database plays a replica that has not yet seen what the writer committed.
    await (await openDatabase({ writeDsn: scratchDsn, dataDir: '/nonexistent-not-used', poolSize: 2 })).close();
    const replicated = await openDatabase({ writeDsn: DSN, readDsn: scratchDsn, dataDir: '/nonexistent-not-used', poolSize: 2 });
    const owner = `contract-${randomBytes(6).toString('hex')}`;
    const replica = new TypeOrmMediaRepository(replicated.reader);
    try {
      const repo = new TypeOrmMediaRepository(replicated.writer, replicated.reader);
      const now = new Date();
      const ready = () => readyMedia(owner, { sha256: randomBytes(32).toString('hex'), createdAt: now, updatedAt: now, retentionUntil: new Date(now.getTime() + 86_400_000) });
      // Rows both databases have (replicated), then changed on the writer only (lag).
      const both = async (m: MediaObject) => {
        expect((await repo.insert(m)).inserted).toBe(true);
        expect((await replica.insert(m)).inserted).toBe(true);
        return m;
      };
      const deleted = await both(ready());
      const claimed = await both(ready());
      const live = await both(ready());
      expect(await repo.claimForDeletion(deleted.id, now)).not.toBeNull();
      expect(await repo.delete(deleted.id)).toBe(true);
      expect(await repo.claimForDeletion(claimed.id, now)).not.toBeNull();
      // The writer moved the live row's retention on (a keep-alive the replica has not seen).
      const keptAlive = await repo.keepAlive(live.id, new Date(now.getTime() + 2 * 86_400_000), now);

      // The replica still answers the stale rows...
      expect(await replica.findReadyByOwnerAndSha256(owner, deleted.sha256!)).toEqual(deleted);
      expect(await replica.findReadyByOwnerAndSha256(owner, claimed.sha256!)).toEqual(claimed);
      // ...the repository does not: a dedupe must never answer with an id that is gone or going.
      expect(await repo.findReadyByOwnerAndSha256(owner, deleted.sha256!)).toBeNull();
      expect(await repo.findReadyByOwnerAndSha256(owner, claimed.sha256!)).toBeNull();
      // A live twin is answered as the writer has it.
      expect(await repo.findReadyByOwnerAndSha256(owner, live.sha256!)).toEqual(keptAlive);

      // The owner deleted the twin and uploaded the same bytes again: the writer's new row is the twin.
      const again = { ...ready(), sha256: deleted.sha256 };
      expect((await repo.insert(again)).inserted).toBe(true);
      expect(await repo.findReadyByOwnerAndSha256(owner, deleted.sha256!)).toEqual(again);
    } finally {
      await replicated.writer.query('DELETE FROM media_api.media_objects WHERE created_by = $1', [owner]);
      await replicated.reader.query('DELETE FROM media_api.media_objects WHERE created_by = $1', [owner]);
      await replicated.close();
    }
  });

  it('fails to open when the server cannot be reached, leaving nothing open', async () => {
    await expect(
      openDatabase({ writeDsn: 'postgres://root@127.0.0.1:1/none', dataDir: '/nonexistent-not-used', poolSize: 2 }),
    ).rejects.toThrow();
  });
});

/**
 * A database of its own for the describe block that calls this, opened (migrated) before its
 * tests and dropped after them; returns the getter.
 */
function openOwnDatabase(prefix: string, poolSize = 2): () => Database {
  let scratch: ScratchDatabase | undefined;
  let database: Database | undefined;
  beforeAll(async () => {
    scratch = await createScratchDatabase(prefix);
    database = await openDatabase({ writeDsn: scratch.dsn, dataDir: '/nonexistent-not-used', poolSize });
  });
  afterAll(async () => {
    await database?.close();
    await scratch?.drop();
  });
  return () => database!;
}

interface ScratchDatabase {
  dsn: string;
  drop(): Promise<void>;
}

/** A database of its own on the test server, named `<prefix>_<random>`, dropped with `drop()`. */
async function createScratchDatabase(prefix: string): Promise<ScratchDatabase> {
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = new Client({ connectionString: DSN });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(DSN);
  url.pathname = `/${name}`;
  return {
    dsn: url.toString(),
    async drop() {
      const client = new Client({ connectionString: DSN });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

interface PlanNode {
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Rows Removed by Filter'?: number;
  'Rows Removed by Index Recheck'?: number;
  Plans?: PlanNode[];
}

/** Rows a plan node and its children produced or threw away, summed over loops. */
/** `count` ready rows of `owner`, straight into the table, as a fast-growing owner's rows arrive between two ANALYZE runs. */
async function insertReadyRows(db: Database, owner: string, count: number): Promise<void> {
  await db.writer.query(
    `INSERT INTO media_api.media_objects (id, storage_provider, storage_key, mime_type, bytes, sha256, created_by, status)
     SELECT 'jan_many_' || i || '_' || $2, 'local', 'k' || i, 'image/png', 1, encode(sha256(($2 || i)::bytea), 'hex'), $1, 'ready'
       FROM generate_series(1, $3::int) AS i`,
    [owner, owner, count],
  );
}

/** Rows touched by `statement` run again with its parameters as `change` leaves them, in a transaction rolled back after. */
async function rowsTouchedBy(
  db: Database,
  statement: { text: string; parameters: readonly unknown[] | undefined },
  change: (parameters: unknown[]) => void,
): Promise<number> {
  const runner = db.writer.createQueryRunner();
  await runner.startTransaction();
  try {
    const parameters = [...(statement.parameters ?? [])];
    change(parameters);
    const [{ 'QUERY PLAN': plan }] = await runner.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${statement.text}`, parameters);
    return rowsTouched(plan[0].Plan);
  } finally {
    await runner.rollbackTransaction();
    await runner.release();
  }
}

function rowsTouched(node: PlanNode): number {
  const loops = node['Actual Loops'] ?? 1;
  const own = ((node['Actual Rows'] ?? 0) + (node['Rows Removed by Filter'] ?? 0) + (node['Rows Removed by Index Recheck'] ?? 0)) * loops;
  return own + (node.Plans ?? []).reduce((sum, child) => sum + rowsTouched(child), 0);
}
