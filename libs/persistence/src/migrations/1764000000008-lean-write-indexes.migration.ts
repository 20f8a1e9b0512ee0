import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Fewer index entries per upload. Every new upload writes its row twice (pending, then ready: the
 * second write is a new row version, since it changes indexed columns), and each version went into
 * every index whose predicate it matched: 13 index entries per upload, 5 of them in indexes that
 * no statement reads or that hold far more rows than their one reader needs.
 *
 * - `idx_media_objects_sha256` (every row, by sha256) and `idx_media_objects_created_at` (every
 *   row, by creation time) go: no statement looks rows up by either alone. The one statement that
 *   looks up pending rows by owner and sha256 (the quota's pending-twin check) gets
 *   `idx_media_objects_open_owner_sha256`, of open reservations and pending uploads only.
 * - `idx_media_objects_retention_until` (every row) becomes `idx_media_objects_ready_retention`:
 *   the retention sweep's one reader asks for ready, unpinned rows in `(retention_until, id)`
 *   order, which the new index holds and returns in that order; a pending row is not in it.
 * - `idx_media_objects_pending_deadline` (every pending row) becomes
 *   `idx_media_objects_claimed_deadline`, of claimed rows only: the sweep reads unclaimed ones
 *   through `idx_media_objects_unclaimed_deadline` (migration 1764000000005) and claimed ones
 *   through this, so a new upload's pending row enters neither of the two claimed-row paths.
 *
 * 13 entries per new upload become 8. On the ingest benchmark: about 60 µs less PostgreSQL CPU
 * per new upload (docs/performance.md, fifteenth pass).
 *
 * Rolling deploy: the previous release's statements are the same texts, and an index only changes
 * their plans; each replacement is built before what it replaces is dropped. The three indexes are
 * built in the migration's transaction, which blocks writes to `media_objects` while they are
 * built (about a second per million rows each). On a large table, build them beforehand without
 * blocking and the migration finds them in place:
 *   CREATE INDEX CONCURRENTLY idx_media_objects_ready_retention ON media_api.media_objects (retention_until, id)
 *     WHERE status = 'ready' AND NOT pinned;
 *   CREATE INDEX CONCURRENTLY idx_media_objects_claimed_deadline ON media_api.media_objects (upload_expires_at, id)
 *     WHERE status = 'pending' AND claimed_at IS NOT NULL;
 *   CREATE INDEX CONCURRENTLY idx_media_objects_open_owner_sha256 ON media_api.media_objects (created_by, sha256)
 *     WHERE status = 'pending' AND claimed_at IS NULL;
 */
export class LeanWriteIndexes1764000000008 implements MigrationInterface {
  name = 'LeanWriteIndexes1764000000008';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE INDEX IF NOT EXISTS idx_media_objects_ready_retention ON media_api.media_objects (retention_until, id)
       WHERE status = 'ready' AND NOT pinned`);
    await q.query(`
      CREATE INDEX IF NOT EXISTS idx_media_objects_claimed_deadline ON media_api.media_objects (upload_expires_at, id)
       WHERE status = 'pending' AND claimed_at IS NOT NULL`);
    await q.query(`
      CREATE INDEX IF NOT EXISTS idx_media_objects_open_owner_sha256 ON media_api.media_objects (created_by, sha256)
       WHERE status = 'pending' AND claimed_at IS NULL`);
    for (const name of REPLACED) await q.query(`DROP INDEX IF EXISTS media_api.${name}`);
  }

  /** The four indexes as migration 1764000000000 built them, then without the three new ones. */
  async down(q: QueryRunner): Promise<void> {
    await q.query(`CREATE INDEX IF NOT EXISTS idx_media_objects_sha256 ON media_api.media_objects (sha256)`);
    await q.query(`CREATE INDEX IF NOT EXISTS idx_media_objects_created_at ON media_api.media_objects (created_at)`);
    await q.query(`CREATE INDEX IF NOT EXISTS idx_media_objects_retention_until ON media_api.media_objects (retention_until)`);
    await q.query(`
      CREATE INDEX IF NOT EXISTS idx_media_objects_pending_deadline
        ON media_api.media_objects (upload_expires_at) WHERE status = 'pending'`);
    for (const name of ADDED) await q.query(`DROP INDEX IF EXISTS media_api.${name}`);
  }
}

const REPLACED = ['idx_media_objects_sha256', 'idx_media_objects_created_at', 'idx_media_objects_retention_until', 'idx_media_objects_pending_deadline'];
const ADDED = ['idx_media_objects_ready_retention', 'idx_media_objects_claimed_deadline', 'idx_media_objects_open_owner_sha256'];
