import {
  MediaRepository,
  isDomainError,
  exceedsQuota,
  mediaNotFound,
  quotaExceeded,
  type InsertOptions,
  type InsertResult,
  type MediaListFilter,
  type MediaObject,
  type OwnerUsage,
  type QuotaLimits,
} from '@jan/domain';
import type { MediaId } from '@jan/mediaid';
import { type DataSource, type EntityManager } from 'typeorm';
import { MediaObjectOrmEntity } from '../entities/media-object.orm-entity';
import { MediaObjectMapper, type MediaObjectRow } from '../mappers/media-object.mapper';
import { answering } from '../database-unavailable';
import { LookupBatcher } from './lookup-batcher';
import { runStatement, statement, type Statement } from './statements';
import { WriteBatcher } from './write-batcher';

const TABLE = 'media_api.media_objects';
const USAGE = 'media_api.owner_usage';
const UNIQUE_VIOLATION = '23505';
// Prepared statements name their columns: a `*` is expanded when a connection prepares it, and
// once a migration adds a column (a rolling deploy), every connection of the older replicas would
// fail it with "cached plan must not change result type" until it reconnected.
const COLUMNS = `id, storage_provider, storage_key, mime_type, bytes, sha256, created_by, retention_until,
  created_at, updated_at, original_sha256, status, pinned, filename, upload_expires_at, claimed_at`;
const BY_ID = statement('media_by_id', `SELECT ${COLUMNS} FROM ${TABLE} WHERE id = $1`);
const BY_IDS = statement('media_by_ids', `SELECT ${COLUMNS} FROM ${TABLE} WHERE id = ANY($1::varchar[])`);
// A view of the sums of the owner's slot rows (migration 1764000000004).
const USAGE_OF = statement('media_owner_usage', `SELECT objects, bytes FROM ${USAGE} WHERE owner_id = $1`);
// Another pending row of the owner with these bytes, open (unclaimed, before its deadline), that
// charged as many bytes and was received as the same bytes (original_sha256: a reservation, which
// has none, is only a twin of bytes stored as received, which its complete stores unchanged too):
// the unique index lets at most one of them become ready, so a pending insert beside it adds
// nothing the owner keeps and is not refused by the quota (MediaRepository.insert).
const PENDING_TWIN = `SELECT 1 FROM ${TABLE}
  WHERE created_by = $1 AND sha256 = $2::char(64) AND id <> $3 AND status = 'pending'
    AND claimed_at IS NULL AND upload_expires_at > $4 AND bytes = $5
    AND original_sha256 IS NOT DISTINCT FROM $6::char(64) LIMIT 1`;
/**
 * Taken by an insert that is subject to a quota, before it inserts: such inserts of one owner run
 * one at a time, so each one's usage read includes every other. The two-key form (a constant and
 * the owner's hash) keeps clear of the migrations' one-key lock; a hash collision between two
 * owners only makes them wait for each other.
 */
const USAGE_LOCK = `SELECT pg_advisory_xact_lock(${0x6a616e}, hashtext($1))`;
// The unique index decides between concurrent twins (stored hash). The NOT EXISTS clauses extend
// dedupe to a ready row whose bytes were re-encoded from these very bytes, and to a first-use copy
// (`dedupe_exempt`, outside the unique index: a twin once the row it was copied beside is gone);
// neither is race-proof, which only costs a duplicate object, never a wrong one. `MARK_READY` and
// the `_MANY` forms carry the same clauses.
const INSERT = statement(
  'media_insert',
  `INSERT INTO ${TABLE}
     (id, storage_provider, storage_key, mime_type, bytes, sha256, created_by, retention_until,
      created_at, updated_at, original_sha256, status, pinned, filename, upload_expires_at)
   SELECT $1::varchar, $2::varchar, $3::varchar, $4::varchar, $5::bigint, $6::char(64), $7::varchar,
          $8::timestamptz, $9::timestamptz, $10::timestamptz, $11::char(64), $12::varchar, $13::boolean,
          $14::varchar, $15::timestamptz
    WHERE NOT ($16::boolean AND EXISTS (
            SELECT 1 FROM ${TABLE} t
             WHERE t.created_by = $7 AND t.status = 'ready' AND t.original_sha256 = $6::char(64)))
      AND NOT ($16::boolean AND EXISTS (
            SELECT 1 FROM ${TABLE} t
             WHERE t.created_by = $7 AND t.sha256 = $6::char(64) AND t.status = 'ready' AND t.dedupe_exempt))
   ON CONFLICT (created_by, sha256) WHERE status = 'ready' AND NOT dedupe_exempt DO NOTHING
   RETURNING ${COLUMNS}`,
);
// Not a row claimed for deletion, whose deleter may already have removed the bytes this complete
// wrote, or will remove them (and the row) next.
const MARK_READY = statement(
  'media_mark_ready',
  `UPDATE ${TABLE} m
      SET bytes = $2, sha256 = $3, mime_type = $4, retention_until = $5,
          status = 'ready', updated_at = $6, upload_expires_at = NULL
    WHERE m.id = $1 AND m.status = 'pending' AND m.claimed_at IS NULL
      AND NOT ($3::char(64) IS NOT NULL AND EXISTS (
            SELECT 1 FROM ${TABLE} t
             WHERE t.created_by = m.created_by AND t.status = 'ready' AND t.original_sha256 = $3::char(64)))
      AND NOT ($3::char(64) IS NOT NULL AND EXISTS (
            SELECT 1 FROM ${TABLE} t
             WHERE t.created_by = m.created_by AND t.sha256 = $3::char(64) AND t.status = 'ready' AND t.dedupe_exempt))
  RETURNING ${COLUMNS}`,
);
// `MARK_READY` for a direct upload completed on first use beside a ready twin (`markReady`'s
// `besideTwin`): the row becomes a ready object of its own, outside the dedupe index.
const MARK_READY_BESIDE_TWIN = statement(
  'media_mark_ready_beside_twin',
  `UPDATE ${TABLE}
      SET bytes = $2, sha256 = $3, mime_type = $4, retention_until = $5,
          status = 'ready', updated_at = $6, upload_expires_at = NULL, dedupe_exempt = true
    WHERE id = $1 AND status = 'pending' AND claimed_at IS NULL
  RETURNING ${COLUMNS}`,
);
// `INSERT` for the inserts of several uploads at once (a `WriteBatcher`): one statement and one
// commit, with the same conditions row by row. `OFFSET 0` keeps each row's check for a re-encoded
// twin an index lookup of its own: without it PostgreSQL may turn the check into one hash of
// every ready row in the table, which it did in tests for three rows against 3,000.
const INSERT_MANY = statement(
  'media_insert_many',
  `INSERT INTO ${TABLE}
     (id, storage_provider, storage_key, mime_type, bytes, sha256, created_by, retention_until,
      created_at, updated_at, original_sha256, status, pinned, filename, upload_expires_at)
   SELECT v.id, v.storage_provider, v.storage_key, v.mime_type, v.bytes, v.sha256, v.created_by, v.retention_until,
          v.created_at, v.updated_at, v.original_sha256, v.status, v.pinned, v.filename, v.upload_expires_at
     FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::varchar[], $5::bigint[], $6::char(64)[], $7::varchar[],
                 $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::char(64)[], $12::varchar[], $13::boolean[],
                 $14::varchar[], $15::timestamptz[], $16::boolean[])
       AS v(id, storage_provider, storage_key, mime_type, bytes, sha256, created_by, retention_until,
            created_at, updated_at, original_sha256, status, pinned, filename, upload_expires_at, ready)
    WHERE NOT (v.ready AND EXISTS (
            SELECT 1 FROM ${TABLE} t
             WHERE t.created_by = v.created_by AND t.status = 'ready' AND t.original_sha256 = v.sha256
            OFFSET 0))
      AND NOT (v.ready AND EXISTS (
            SELECT 1 FROM ${TABLE} t
             WHERE t.created_by = v.created_by AND t.sha256 = v.sha256 AND t.status = 'ready' AND t.dedupe_exempt
            OFFSET 0))
   ON CONFLICT (created_by, sha256) WHERE status = 'ready' AND NOT dedupe_exempt DO NOTHING
   RETURNING ${COLUMNS}`,
);
/**
 * `MARK_READY` for several rows in one statement (and one commit), under the same conditions row
 * by row. The rows are found through the primary key (`m.id = ANY(…)`, at most one row per id),
 * then matched with their values. The pending-and-unclaimed test is wrapped in `IS TRUE` so that
 * PostgreSQL cannot answer it from a partial index of open reservations instead: with stale
 * statistics it read every open reservation that way (3 rows against 3,000 in tests). `OFFSET 0`
 * keeps each row's check for a re-encoded twin an index lookup of its own, as in `INSERT_MANY`.
 * The rows are updated in the order of the arrays (lock order, `inLockOrder`): the plan probes a
 * hash of the rows found by id with the arrays' rows, one by one (a test checks the plan).
 * One text for any number of rows: a text per number (a CTE per row, tried first) was a prepared
 * statement per number on every connection, each holding its plans, about 100 kB a row, for the
 * connection's life.
 */
const MARK_READY_MANY = statement(
  'media_mark_ready_many',
  `UPDATE ${TABLE} m
      SET bytes = v.bytes, sha256 = v.sha256, mime_type = v.mime_type, retention_until = v.retention_until,
          status = 'ready', updated_at = v.updated_at, upload_expires_at = NULL
     FROM unnest($1::varchar[], $2::bigint[], $3::char(64)[], $4::varchar[], $5::timestamptz[], $6::timestamptz[])
       AS v(id, bytes, sha256, mime_type, retention_until, updated_at)
    WHERE m.id = ANY($1::varchar[]) AND m.id = v.id AND (m.status = 'pending' AND m.claimed_at IS NULL) IS TRUE
      AND NOT (v.sha256 IS NOT NULL AND EXISTS (
            SELECT 1 FROM ${TABLE} t
             WHERE t.created_by = m.created_by AND t.status = 'ready' AND t.original_sha256 = v.sha256
            OFFSET 0))
      AND NOT (v.sha256 IS NOT NULL AND EXISTS (
            SELECT 1 FROM ${TABLE} t
             WHERE t.created_by = m.created_by AND t.sha256 = v.sha256 AND t.status = 'ready' AND t.dedupe_exempt
            OFFSET 0))
  RETURNING ${COLUMNS.split(',').map((column) => `m.${column.trim()}`).join(', ')}`,
);
// The owner's ready rows with these bytes: one lookup per index that holds them (the dedupe
// index, the first-use copies' index of migration 1764000000007, the re-encoded originals'),
// whose predicates each branch repeats so that the planner reads through nothing else.
const twinCandidates = (owner: string, sha256: string) => `
    SELECT ${COLUMNS} FROM ${TABLE} WHERE created_by = ${owner} AND sha256 = ${sha256} AND status = 'ready' AND NOT dedupe_exempt
    UNION ALL
    SELECT ${COLUMNS} FROM ${TABLE} WHERE created_by = ${owner} AND sha256 = ${sha256} AND status = 'ready' AND dedupe_exempt
    UNION ALL
    SELECT ${COLUMNS} FROM ${TABLE} WHERE created_by = ${owner} AND original_sha256 = ${sha256} AND status = 'ready'`;
const TWIN = statement(
  'media_twin',
  `SELECT * FROM (${twinCandidates('$1', '$2::char(64)')}
  ) twin
  ORDER BY created_at, id
  LIMIT 1`,
);
// The twin lookup for several (owner, sha256) pairs at once: the same three index lookups per pair.
const TWINS = statement(
  'media_twins',
  `SELECT asked.owner AS asked_owner, asked.sha AS asked_sha, twin.*
     FROM unnest($1::varchar[], $2::char(64)[]) AS asked(owner, sha)
     CROSS JOIN LATERAL (
       SELECT * FROM (${twinCandidates('asked.owner', 'asked.sha')}
       ) candidates
       ORDER BY created_at, id
       LIMIT 1
     ) twin`,
);
// A pending row (`insert` with `unlessTwin`), unless its owner has a ready twin of its sha256,
// which is returned instead: the dedupe lookup and the insert in one statement. Each row returned
// says which it is (`inserted`) and for which pending row (`for_id`).
const INSERT_UNLESS_TWIN = statement(
  'media_insert_unless_twin',
  `WITH twin AS (
     SELECT * FROM (${twinCandidates('$7::varchar', '$6::char(64)')}
     ) candidates
     ORDER BY created_at, id
     LIMIT 1
   ), inserted AS (
     INSERT INTO ${TABLE}
       (id, storage_provider, storage_key, mime_type, bytes, sha256, created_by, retention_until,
        created_at, updated_at, original_sha256, status, pinned, filename, upload_expires_at)
     SELECT $1::varchar, $2::varchar, $3::varchar, $4::varchar, $5::bigint, $6::char(64), $7::varchar,
            $8::timestamptz, $9::timestamptz, $10::timestamptz, $11::char(64), $12::varchar, $13::boolean,
            $14::varchar, $15::timestamptz
      WHERE NOT EXISTS (SELECT 1 FROM twin)
     RETURNING ${COLUMNS}
   )
   SELECT true AS inserted, $1::varchar AS for_id, inserted.* FROM inserted
   UNION ALL
   SELECT false, $1::varchar, twin.* FROM twin`,
);
// `INSERT_UNLESS_TWIN` for several pending rows at once (a `WriteBatcher`): the same three index
// lookups per row. \`NOT IN\` (a hashed filter on the rows in the order of the arrays, never a join
// that could reorder them) keeps the lock order of \`inLockOrder\`.
const INSERT_UNLESS_TWIN_MANY = statement(
  'media_insert_unless_twin_many',
  `WITH v AS (
     SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::varchar[], $5::bigint[], $6::char(64)[], $7::varchar[],
                          $8::timestamptz[], $9::timestamptz[], $10::timestamptz[], $11::char(64)[], $12::varchar[], $13::boolean[],
                          $14::varchar[], $15::timestamptz[])
       AS v(id, storage_provider, storage_key, mime_type, bytes, sha256, created_by, retention_until,
            created_at, updated_at, original_sha256, status, pinned, filename, upload_expires_at)
   ), twin AS (
     SELECT v.id AS for_id, candidate.*
       FROM v
       CROSS JOIN LATERAL (
         SELECT * FROM (${twinCandidates('v.created_by', 'v.sha256')}
         ) candidates
         ORDER BY created_at, id
         LIMIT 1
       ) candidate
   ), inserted AS (
     INSERT INTO ${TABLE}
       (id, storage_provider, storage_key, mime_type, bytes, sha256, created_by, retention_until,
        created_at, updated_at, original_sha256, status, pinned, filename, upload_expires_at)
     SELECT v.id, v.storage_provider, v.storage_key, v.mime_type, v.bytes, v.sha256, v.created_by, v.retention_until,
            v.created_at, v.updated_at, v.original_sha256, v.status, v.pinned, v.filename, v.upload_expires_at
       FROM v
      WHERE v.id NOT IN (SELECT for_id FROM twin)
     RETURNING ${COLUMNS}
   )
   SELECT true AS inserted, inserted.id AS for_id, inserted.* FROM inserted
   UNION ALL
   SELECT false, twin.* FROM twin`,
);
/** A twin can vanish between the conflict and the lookup (deleted by retention); try again. */
const CONFLICT_ATTEMPTS = 3;

/**
 * `MediaRepository` on PostgreSQL (or the embedded engine, which speaks the same protocol).
 *
 * Lookups by id go to `reader` when a replica is configured; an id the replica does not know yet
 * is asked of the writer, so a client that uploads and immediately resolves is not told 404.
 * Everything that decides something (inserts, the twin lookup after a conflict, the retention
 * sweep) uses the writer.
 *
 * Lookups by id, and dedupe lookups by (owner, sha256), made in the same turn of the event loop
 * share one statement (`LookupBatcher`): under load, concurrent serves, presigns, resolves and
 * uploads cost one round trip between them. The shared statement starts after every lookup in it
 * was asked for, so none reads older data than a statement of its own would have, and a statement
 * that fails for one caller's keys is asked again per caller, so it fails no one else.
 *
 * Quotas: a trigger keeps `owner_usage` in step with the rows (migrations 1764000000002 and
 * …004), in one slot row per connection so that one owner's inserts do not wait on each other.
 * With limits, the insert runs in a transaction that first takes the owner's advisory lock, then
 * inserts and reads the owner's usage: concurrent limited inserts of one owner run one at a time
 * and see each other's bytes, and one that would go past a limit rolls back.
 */
export class TypeOrmMediaRepository extends MediaRepository {
  // One batcher per data source (writer, reader).
  private readonly lookupsOn = memoize(
    (source: DataSource) =>
      new LookupBatcher<string, MediaObjectRow>({
        run: (ids) => (ids.length === 1 ? runStatement<MediaObjectRow>(source, BY_ID, ids) : runStatement<MediaObjectRow>(source, BY_IDS, [ids])),
        keyOf: (row) => row.id,
        copy: MediaObjectMapper.copyRow,
        sharedFailure: isOutage,
      }),
  );
  private readonly twinLookupsOn = memoize(
    (source: DataSource) =>
      new LookupBatcher<string, TwinRow>({
        run: async (keys) => {
          if (keys.length === 1) {
            const [ownerId, sha256] = splitTwinKey(keys[0]);
            const rows = await runStatement<MediaObjectRow>(source, TWIN, [ownerId, sha256]);
            return rows.map((row) => ({ ...row, asked_owner: ownerId, asked_sha: sha256 }));
          }
          const pairs = keys.map(splitTwinKey);
          return runStatement<TwinRow>(source, TWINS, [pairs.map(([ownerId]) => ownerId), pairs.map(([, sha256]) => sha256)]);
        },
        keyOf: (row) => twinKey(row.asked_owner, row.asked_sha),
        copy: (row) => ({ ...MediaObjectMapper.copyRow(row), asked_owner: row.asked_owner, asked_sha: row.asked_sha }),
        sharedFailure: isOutage,
      }),
  );

  // Inserts and markReady calls without a binding quota, shared between the uploads of one turn.
  // Each names where its parameters hold the row's sha256, the second key of the lock order.
  private readonly inserts = this.writeBatcher<MediaObjectRow>(INSERT, INSERT_MANY, 5, (row) => row.id);
  private readonly readyMarks = this.writeBatcher<MediaObjectRow>(MARK_READY, MARK_READY_MANY, 2, (row) => row.id);
  private readonly insertsUnlessTwin = this.writeBatcher<UnlessTwinRow>(INSERT_UNLESS_TWIN, INSERT_UNLESS_TWIN_MANY, 5, (row) => row.for_id);

  constructor(
    private readonly writer: DataSource,
    private readonly reader: DataSource = writer,
  ) {
    super();
  }

  // Reads on the hot paths (serve, presign, resolve) are plain parameterised SQL: the query
  // builder cost 8-15% of their CPU in profiles (docs/performance.md).
  async findById(id: MediaId, options?: { fresh?: boolean }): Promise<MediaObject | null> {
    const [found] = await this.selectByIds(options?.fresh ? this.writer : this.reader, [id]);
    if (found) return found;
    if (!this.hasReplica) return null;
    const [fromWriter] = await this.selectByIds(this.writer, [id]);
    return fromWriter ?? null;
  }

  /** One statement for all ids, shared with other lookups of the same turn (two when a replica lags). */
  async findByIds(ids: readonly MediaId[]): Promise<MediaObject[]> {
    const unique = [...new Set(ids)];
    if (unique.length === 0) return [];
    const found = await this.selectByIds(this.reader, unique);
    if (this.hasReplica && found.length < unique.length) {
      const seen = new Set(found.map((media) => media.id));
      const missing = unique.filter((id) => !seen.has(id));
      found.push(...(await this.selectByIds(this.writer, missing)));
    }
    return found;
  }

  private async selectByIds(source: DataSource, ids: readonly MediaId[]): Promise<MediaObject[]> {
    const rows = await this.lookupsOn(source).load(ids);
    return rows.map((row) => MediaObjectMapper.rowToDomain(row));
  }

  /**
   * Asked of the replica, when there is one, since most uploads are new bytes and find nothing.
   * A twin found there is confirmed on the primary before it is returned: the replica may lag
   * behind a deletion (or a claim for one) that the primary has already committed, and a dedupe
   * answered from it would name an id that no longer exists. The confirmation is the primary's
   * row by id (shared with the other lookups by id of the same turn), taken only while it is still
   * ready, unclaimed and the same owner's; otherwise the primary is asked for the twin (there may
   * be another), and null means the bytes are stored anew.
   */
  async findReadyByOwnerAndSha256(ownerId: string, sha256: string): Promise<MediaObject | null> {
    const found = await this.twin(this.reader, ownerId, sha256);
    if (!found || !this.hasReplica) return found;
    const [row] = await this.lookupsOn(this.writer).load([found.id]);
    if (row && row.status === 'ready' && !row.claimed_at && row.created_by === ownerId) return MediaObjectMapper.rowToDomain(row);
    return this.twin(this.writer, ownerId, sha256);
  }

  async insert(media: MediaObject, limits?: QuotaLimits, options: InsertOptions = {}): Promise<InsertResult> {
    if (options.unlessTwin && media.status === 'pending' && media.sha256 !== null) return this.insertUnlessTwin(media, limits);
    const row = MediaObjectMapper.toPersistence(media);
    const ready = media.status === 'ready' && media.sha256 !== null;
    for (let attempt = 0; attempt < CONFLICT_ATTEMPTS; attempt++) {
      const pendingTwin = media.status === 'pending' && media.sha256 !== null ? [media.ownerId, media.sha256, media.id, media.createdAt, media.bytes, media.originalSha256] : undefined;
      const inserted = await this.withQuota(limits, media.ownerId, { objects: 1, bytes: media.bytes }, INSERT, [...insertValues(row), ready], pendingTwin, this.inserts);
      if (inserted.length) return { inserted: true, media: MediaObjectMapper.rowToDomain(inserted[0]) };
      if (!ready) throw new Error(`insert of ${media.id} returned no row`);
      const existing = await this.twin(this.writer, media.ownerId, media.sha256!);
      if (existing) return { inserted: false, existing };
    }
    throw new Error(`insert of ${media.id} kept conflicting with a twin that disappeared`);
  }

  /** `insert` with `unlessTwin`: one statement, which inserts the pending row or returns the twin. */
  private async insertUnlessTwin(media: MediaObject, limits: QuotaLimits | undefined): Promise<InsertResult> {
    const row = MediaObjectMapper.toPersistence(media);
    const pendingTwin = [media.ownerId, media.sha256, media.id, media.createdAt, media.bytes, media.originalSha256];
    const [found] = await this.withQuota<UnlessTwinRow>(
      limits,
      media.ownerId,
      { objects: 1, bytes: media.bytes },
      INSERT_UNLESS_TWIN,
      insertValues(row),
      pendingTwin,
      this.insertsUnlessTwin,
      (returned) => returned.inserted,
    );
    if (!found) throw new Error(`insert of ${media.id} returned no row`);
    const result = MediaObjectMapper.rowToDomain(found);
    return found.inserted ? { inserted: true, media: result } : { inserted: false, existing: result };
  }

  /**
   * Only a pending row that nobody claimed for deletion becomes ready; a claimed one answers
   * media_not_found, as a deleted one does. Calling it again for a row that is already ready
   * returns that row as `inserted: true`: reporting it as its own twin would invite the caller to
   * delete the object it points at.
   */
  async markReady(
    pending: Pick<MediaObject, 'id' | 'ownerId'>,
    facts: Pick<MediaObject, 'bytes' | 'sha256' | 'mimeType' | 'retentionUntil'>,
    now: Date,
    limits?: QuotaLimits,
    options: { besideTwin?: boolean } = {},
  ): Promise<InsertResult> {
    const { id } = pending;
    for (let attempt = 0; attempt < CONFLICT_ATTEMPTS; attempt++) {
      let updated: MediaObjectRow[];
      try {
        const declared = limits ? await this.declaredBytes(id) : null;
        // A copy beside a twin is charged as the whole object it is, not as what its reservation
        // did not declare: a reservation that declared its twin's hash may have been let past the
        // limits beside that twin's pending row (`PENDING_TWIN`), on the promise that only one of
        // them is kept. So the usage of everything else plus this row must fit.
        const charged = options.besideTwin ? { objects: 1, bytes: facts.bytes } : { objects: 0, bytes: declared === null ? 0 : facts.bytes - declared.bytes };
        updated = await this.withQuota(declared ? limits : undefined, declared?.ownerId ?? pending.ownerId, charged, options.besideTwin ? MARK_READY_BESIDE_TWIN : MARK_READY, [
          id,
          facts.bytes,
          facts.sha256,
          facts.mimeType,
          facts.retentionUntil,
          now,
        ], undefined, options.besideTwin ? undefined : this.readyMarks);
      } catch (error) {
        if (!isUniqueViolation(error)) throw error;
        updated = [];
      }
      if (updated.length) return { inserted: true, media: MediaObjectMapper.rowToDomain(updated[0]) };

      const [row] = await this.lookupsOn(this.writer).load([id]);
      // Claimed: its deleter goes on and removes it; for this complete it is gone already.
      if (!row || row.claimed_at) throw mediaNotFound([id]);
      const current = MediaObjectMapper.rowToDomain(row);
      if (current.status === 'ready') return { inserted: true, media: current };
      if (facts.sha256 === null) continue;
      const existing = await this.twin(this.writer, current.ownerId, facts.sha256);
      if (existing) return { inserted: false, existing };
    }
    throw new Error(`marking ${id} ready kept conflicting with a twin that disappeared`);
  }

  /**
   * Not a row claimed for deletion (`claimed_at`, whatever the clocks of the pin and the claimer
   * say): the claim and the pin take the same row lock, and whichever comes second re-reads the
   * row the other wrote. Nor a reservation past its deadline (abandoned).
   */
  async setPinned(id: MediaId, pinned: boolean, retentionUntil: Date | null, now: Date): Promise<MediaObject | null> {
    const [rows] = (await answering(
      this.writer.query(
        `UPDATE ${TABLE} SET pinned = $2, retention_until = $3, updated_at = $4
          WHERE id = $1 AND claimed_at IS NULL AND NOT (status = 'pending' AND upload_expires_at <= $4)
          RETURNING ${COLUMNS}`,
        [id, pinned, retentionUntil, now],
      ),
    )) as [MediaObjectRow[], number];
    return rows.length ? MediaObjectMapper.rowToDomain(rows[0]) : null;
  }

  /**
   * One UPDATE: under READ COMMITTED, a row that a concurrent pin (or dedupe keep-alive) changed
   * first is re-checked against the condition after that transaction commits, so a pinned row is
   * never claimed. `status = 'pending'` also takes a ready row out of the unique dedupe index;
   * `claimed_at` is what pins, keep-alives and `markReady` refuse. A claimed row can be claimed
   * again (a later sweep retrying a failed deletion): both claimers go on, one deletes the row.
   */
  async claimForDeletion(id: MediaId, now: Date, options: { onlyIfExpired?: boolean } = {}): Promise<MediaObject | null> {
    const [rows] = (await answering(
      this.writer.query(
        `UPDATE ${TABLE} SET status = 'pending', upload_expires_at = $2, updated_at = $2, claimed_at = $2
          WHERE id = $1
            AND (NOT $3::boolean
                 OR (status = 'ready' AND NOT pinned AND retention_until <= $2)
                 OR (status = 'pending' AND upload_expires_at <= $2))
          RETURNING ${COLUMNS}`,
        [id, now, !!options.onlyIfExpired],
      ),
    )) as [MediaObjectRow[], number];
    return rows.length ? MediaObjectMapper.rowToDomain(rows[0]) : null;
  }

  async keepAlive(id: MediaId, retentionUntil: Date | null, now: Date): Promise<MediaObject | null> {
    const [rows] = (await answering(
      this.writer.query(
        `UPDATE ${TABLE}
            SET retention_until = CASE
                  WHEN pinned OR retention_until IS NULL THEN retention_until
                  WHEN $2::timestamptz IS NULL THEN NULL
                  ELSE GREATEST(retention_until, $2::timestamptz) END,
                updated_at = CASE WHEN pinned OR retention_until IS NULL THEN updated_at ELSE $3 END
          WHERE id = $1 AND status = 'ready' AND claimed_at IS NULL
          RETURNING ${COLUMNS}`,
        [id, retentionUntil, now],
      ),
    )) as [MediaObjectRow[], number];
    return rows.length ? MediaObjectMapper.rowToDomain(rows[0]) : null;
  }

  /** Claims the reservation for the discard that follows, unless another deleter claimed it first. */
  async closeUpload(id: MediaId, now: Date): Promise<boolean> {
    const [, changed] = (await answering(
      this.writer.query(
        `UPDATE ${TABLE} SET upload_expires_at = $2, updated_at = $2, claimed_at = $2
          WHERE id = $1 AND status = 'pending' AND claimed_at IS NULL`,
        [id, now],
      ),
    )) as [unknown, number];
    return changed > 0;
  }

  async delete(id: MediaId): Promise<boolean> {
    const result = await answering(this.writer.getRepository(MediaObjectOrmEntity).delete({ id }));
    return (result.affected ?? 0) > 0;
  }

  async findExpired(now: Date, limit: number): Promise<MediaObject[]> {
    if (limit <= 0) return [];
    // One ordered index scan per kind, each stopping at `limit`: written as one OR, the planner
    // fetched and sorted every expired row for each batch, so draining a backlog of n expired
    // objects (retention turned on for an old table) cost O(n) per batch of 100.
    // Rows claimed before (a deletion that failed, e.g. under an object lock) come after all the
    // others, those claimed longest ago first: however many of them there are, objects that
    // expired since are taken first, and the claimed ones take turns with what budget is left.
    // Unclaimed reservations are read through an index of their own, which only `status <>
    // 'ready'` matches (migration 1764000000005), so that the claimed ones are not read through.
    const rows: MediaObjectRow[] = await answering(
      this.writer.query(
        `SELECT * FROM (
           (SELECT *, retention_until AS expired_at FROM ${TABLE}
             WHERE status = 'ready' AND NOT pinned AND retention_until <= $1
             ORDER BY retention_until, id LIMIT $2)
           UNION ALL
           (SELECT *, upload_expires_at AS expired_at FROM ${TABLE}
             WHERE status <> 'ready' AND claimed_at IS NULL AND upload_expires_at <= $1
             ORDER BY upload_expires_at, id LIMIT $2)
           UNION ALL
           (SELECT *, upload_expires_at AS expired_at FROM ${TABLE}
             WHERE status = 'pending' AND claimed_at IS NOT NULL AND upload_expires_at <= $1
             ORDER BY upload_expires_at, id LIMIT $2)
         ) expired
         ORDER BY claimed_at IS NOT NULL, expired_at, id
         LIMIT $2`,
        [now, limit],
      ),
    );
    return rows.map((row) => MediaObjectMapper.rowToDomain(row));
  }

  async usage(ownerId: string): Promise<OwnerUsage> {
    const rows = await runStatement<{ objects: string; bytes: string }>(this.reader, USAGE_OF, [ownerId]);
    return rows.length ? { objects: Number(rows[0].objects), bytes: Number(rows[0].bytes) } : { objects: 0, bytes: 0 };
  }

  async list(filter: MediaListFilter): Promise<MediaObject[]> {
    if (filter.limit <= 0 || (filter.ids && filter.ids.length === 0)) return [];
    const where: string[] = [];
    const params: unknown[] = [];
    const param = (value: unknown) => {
      params.push(value);
      return `$${params.length}`;
    };
    if (filter.ownerId !== undefined) where.push(`created_by = ${param(filter.ownerId)}`);
    if (filter.ids) where.push(`id = ANY(${param([...filter.ids])}::varchar[])`);
    if (filter.afterId) where.push(`id > ${param(filter.afterId)}`);
    if (filter.expiredAt) {
      const at = param(filter.expiredAt);
      // One disjunct per partial index of the retention sweep (migrations 1764000000005 and
      // 1764000000008), each repeating its index's predicate, so that the planner combines the
      // three indexes: written as `status = 'pending' AND upload_expires_at <= …`, the pending rows
      // matched no index (none holds every pending row any more) and each batch of a purge read
      // the whole table. The same rows: the status is 'pending' or 'ready' (its check constraint).
      where.push(
        `((status = 'ready' AND NOT pinned AND retention_until <= ${at})` +
          ` OR (status <> 'ready' AND claimed_at IS NULL AND upload_expires_at <= ${at})` +
          ` OR (status = 'pending' AND claimed_at IS NOT NULL AND upload_expires_at <= ${at}))`,
      );
    }
    // The writer: a purge decides from what it lists.
    const rows: MediaObjectRow[] = await answering(
      this.writer.query(`SELECT * FROM ${TABLE} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT ${param(filter.limit)}`, params),
    );
    return rows.map((row) => MediaObjectMapper.rowToDomain(row));
  }

  async ping(): Promise<void> {
    await answering(this.writer.query('SELECT 1'));
  }

  /**
   * Runs `statement` alone, or, when `limits` bind and the statement adds something, in a
   * transaction that reads the owner's usage after it and rolls back past a limit. Returns the
   * rows the statement returned.
   */
  private async withQuota<Row extends MediaObjectRow = MediaObjectRow>(
    limits: QuotaLimits | undefined,
    ownerId: string,
    add: OwnerUsage,
    statement: Statement,
    parameters: unknown[],
    /** `PENDING_TWIN`'s parameters: a row it finds lets the statement past the limits. */
    pendingTwin?: unknown[],
    /** Runs `statement` with others of the same turn when no limit binds. */
    batched?: WriteBatcher<OwnedWrite, Row>,
    /** Whether a returned row is one the statement added (default: all are); else nothing is checked. */
    added: (row: Row) => boolean = () => true,
  ): Promise<Row[]> {
    const binds = !!limits && ((limits.maxObjects > 0 && add.objects > 0) || (limits.maxBytes > 0 && add.bytes > 0));
    if (!binds && batched) {
      const row = await batched.write({ ownerId, parameters });
      return row ? [row] : [];
    }
    if (!binds) return runStatement<Row>(this.writer, statement, parameters);
    const checked = this.writer.transaction(async (manager: EntityManager) => {
      await manager.query(USAGE_LOCK, [ownerId]);
      const raw: unknown[] = await manager.query(statement.text, parameters);
      // TypeORM answers UPDATE … RETURNING with [rows, affected], INSERT … RETURNING with rows.
      const rows = (Array.isArray(raw[0]) ? raw[0] : raw) as Row[];
      if (!rows.some(added)) return rows;
      const [after]: Array<{ objects: string; bytes: string }> = await manager.query(USAGE_OF.text, [ownerId]);
      const now = after ? { objects: Number(after.objects), bytes: Number(after.bytes) } : { objects: 0, bytes: 0 };
      const before = { objects: now.objects - add.objects, bytes: now.bytes - add.bytes };
      // Throwing rolls the statement (and the trigger's usage change) back.
      if (exceedsQuota(before, add, limits!)) {
        const shared = pendingTwin ? ((await manager.query(PENDING_TWIN, pendingTwin)) as unknown[]) : [];
        if (shared.length === 0) throw quotaExceeded(limits!, before);
      }
      return rows;
    });
    return answering(checked);
  }

  /**
   * Runs `single` with a row's parameters when it is alone, and `many`, over `unnest` of the
   * rows' parameters in lock order (`inLockOrder`), otherwise. Keyed by the row's id, the first
   * parameter; `sha256At` is where the parameters hold the sha256 the row will have.
   */
  private writeBatcher<Row extends MediaObjectRow>(single: Statement, many: Statement, sha256At: number, keyOfRow: (row: Row) => string): WriteBatcher<OwnedWrite, Row> {
    return new WriteBatcher<OwnedWrite, Row>({
      run: (writes) =>
        writes.length === 1
          ? runStatement<Row>(this.writer, single, writes[0].parameters)
          : runStatement<Row>(this.writer, many, columnsOf(inLockOrder(writes, sha256At))),
      keyOfInput: (write) => write.parameters[0] as string,
      keyOfRow,
      sharedFailure: isOutage,
    });
  }

  /** Owner and currently counted bytes of a pending row, or null when it is not pending. */
  private async declaredBytes(id: MediaId): Promise<{ ownerId: string; bytes: number } | null> {
    const rows: Array<{ created_by: string; bytes: string }> = await answering(
      this.writer.query(`SELECT created_by, bytes FROM ${TABLE} WHERE id = $1 AND status = 'pending'`, [id]),
    );
    return rows.length ? { ownerId: rows[0].created_by, bytes: Number(rows[0].bytes) } : null;
  }

  private get hasReplica(): boolean {
    return this.reader !== this.writer;
  }

  /**
   * The owner's ready object stored as, or re-encoded from, these bytes. One index lookup per
   * index that can hold it (`TWIN`'s three branches): written as `sha256 = $2 OR original_sha256
   * = $2`, the planner matched the owner alone in `(created_by, sha256)` and filtered every one of
   * the owner's rows whenever its statistics were stale (a new table, a fast-growing owner), so
   * each upload cost O(objects).
   */
  private async twin(source: DataSource, ownerId: string, sha256: string): Promise<MediaObject | null> {
    if (!SHA256_HEX.test(sha256)) {
      const rows = await runStatement<MediaObjectRow>(source, TWIN, [ownerId, sha256]);
      return rows.length ? MediaObjectMapper.rowToDomain(rows[0]) : null;
    }
    const [found] = await this.twinLookupsOn(source).load([twinKey(ownerId, sha256)]);
    return found ? MediaObjectMapper.rowToDomain(found) : null;
  }
}

/** `make`, remembering what it made for each argument (a data source). */
function memoize<Key, T>(make: (key: Key) => T): (key: Key) => T {
  const made = new Map<Key, T>();
  return (key) => {
    let value = made.get(key);
    if (value === undefined) made.set(key, (value = make(key)));
    return value;
  };
}

/** A row's values in the order `INSERT` and `INSERT_UNLESS_TWIN` take them ($1 to $15). */
function insertValues(row: ReturnType<typeof MediaObjectMapper.toPersistence>): unknown[] {
  return [
    row.id,
    row.storageProvider,
    row.storageKey,
    row.mimeType,
    row.bytes,
    row.sha256,
    row.createdBy,
    row.retentionUntil,
    row.createdAt,
    row.updatedAt,
    row.originalSha256,
    row.status,
    row.pinned,
    row.filename,
    row.uploadExpiresAt,
  ];
}

/** Rows of parameters as one array per parameter, for a statement over `unnest`. */
function columnsOf(rows: unknown[][]): unknown[][] {
  return rows[0].map((_, column) => rows.map((row) => row[column]));
}

/** A shared write's parameters, and the owner of its row: the first key of the lock order. */
interface OwnedWrite {
  readonly ownerId: string;
  readonly parameters: unknown[];
}

/**
 * The parameters of a shared write's rows by owner, then the sha256 each row will have: the order
 * of the locks each row's insert or update takes, on its (owner, sha256) entry of the unique index
 * (a ready row's) and on its owner's usage slot (the trigger's, one row per owner and
 * `pg_backend_pid() % 16`, which two connections may share; an update takes it only when the
 * bytes change). Two statements that took them in different orders could each wait for the other
 * until PostgreSQL broke the deadlock (after `deadlock_timeout`, a second by default). Inserts and
 * updates share the order, so neither deadlocks with the other either. The statements write the
 * rows in the order of their arrays (`MARK_READY_MANY`).
 */
function inLockOrder(writes: OwnedWrite[], sha256At: number): unknown[][] {
  const key = (write: OwnedWrite) => `${write.ownerId}\n${(write.parameters[sha256At] as string | null) ?? ''}`;
  return [...writes].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0)).map((write) => write.parameters);
}

/** Whether the database did not answer: a failure every caller of a shared lookup would get alone. */
function isOutage(error: unknown): boolean {
  return isDomainError(error) && error.code === 'database_unavailable';
}

/** A twin found for the (owner, sha256) pair it was asked for. */
type TwinRow = MediaObjectRow & { asked_owner: string; asked_sha: string };

/** A row `INSERT_UNLESS_TWIN` returned: the pending row `for_id` inserted, or its twin. */
type UnlessTwinRow = MediaObjectRow & { inserted: boolean; for_id: string };

const SHA256_HEX = /^[0-9a-f]{64}$/;
// The hex digest has a fixed length, so the owner id after it may hold any character.
const twinKey = (ownerId: string, sha256: string) => `${sha256}\n${ownerId}`;
const splitTwinKey = (key: string): [ownerId: string, sha256: string] => [key.slice(65), key.slice(0, 64)];

function isUniqueViolation(error: unknown): boolean {
  const driverError = (error as { driverError?: { code?: string }; code?: string } | null) ?? {};
  return driverError.code === UNIQUE_VIOLATION || driverError.driverError?.code === UNIQUE_VIOLATION;
}
