import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `dedupe_exempt`: a ready row that may share its owner's bytes with another ready row. Only a
 * direct upload completed on first use sets it (docs/api.md, "Complete on first use"): an old
 * client that never called `complete` keeps using the reservation's id, so when the owner already
 * had the same bytes the reservation becomes a ready object of its own (its own row, its own
 * stored copy of the bytes, counted in the owner's usage) instead of being dropped for its twin.
 *
 * The per-owner dedupe index `uq_media_objects_owner_sha256_ready` is rebuilt, under the same
 * name, to leave those rows out: `(created_by, sha256) WHERE status = 'ready' AND NOT
 * dedupe_exempt`. Every other ready row is deduped exactly as before (at most one per owner and
 * sha256), and inserts name the new predicate in their `ON CONFLICT`. The copies get a small index of
 * their own, `idx_media_objects_owner_sha256_exempt`, so that a dedupe lookup, which may answer
 * with a copy (when its twin was deleted), stays index lookups.
 *
 * Rolling deploy: the column has a constant default (no table rewrite) and the previous release's
 * statements name their columns. But the previous release's inserts say `ON CONFLICT (created_by,
 * sha256) WHERE status = 'ready'`, which no longer matches any index once this migration has run:
 * PostgreSQL refuses them ("no unique or exclusion constraint matching the ON CONFLICT
 * specification"), so its ingests and prepare-uploads fail until its replicas are replaced. Scale
 * the previous release down before the new one migrates, or keep the rollout short
 * (docs/operations.md).
 *
 * The index is rebuilt in the migration's transaction, which blocks writes to `media_objects`
 * while it runs (about a second per million rows).
 *
 * `down` restores the previous index; it fails while two ready rows of one owner share a sha256
 * (a first-use copy beside its twin): delete one of them first.
 */
export class FirstUseCopies1764000000007 implements MigrationInterface {
  name = 'FirstUseCopies1764000000007';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE media_api.media_objects ADD COLUMN IF NOT EXISTS dedupe_exempt boolean NOT NULL DEFAULT false`);
    await q.query(`DROP INDEX IF EXISTS media_api.uq_media_objects_owner_sha256_ready`);
    await q.query(`
      CREATE UNIQUE INDEX uq_media_objects_owner_sha256_ready
        ON media_api.media_objects (created_by, sha256) WHERE status = 'ready' AND NOT dedupe_exempt`);
    await q.query(`
      CREATE INDEX IF NOT EXISTS idx_media_objects_owner_sha256_exempt
        ON media_api.media_objects (created_by, sha256) WHERE status = 'ready' AND dedupe_exempt`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS media_api.idx_media_objects_owner_sha256_exempt`);
    await q.query(`DROP INDEX IF EXISTS media_api.uq_media_objects_owner_sha256_ready`);
    await q.query(`
      CREATE UNIQUE INDEX uq_media_objects_owner_sha256_ready
        ON media_api.media_objects (created_by, sha256) WHERE status = 'ready'`);
    await q.query(`ALTER TABLE media_api.media_objects DROP COLUMN IF EXISTS dedupe_exempt`);
  }
}
