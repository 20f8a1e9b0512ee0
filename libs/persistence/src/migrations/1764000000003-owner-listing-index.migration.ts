import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `(created_by, id)` instead of `(created_by)`: the admin listing and the purge of one owner page
 * by `WHERE created_by = $1 AND id > $2 ORDER BY id LIMIT n`. With the owner alone in the index,
 * every page fetched and sorted all of the owner's rows, so walking an owner with n objects cost
 * O(n²); now each page reads only its own rows. The new index serves every query the old one did.
 *
 * Built inside the migration's transaction, which blocks writes to the table while it runs (about
 * a second per million rows). On a large table, create it beforehand without blocking, and this
 * migration finds it in place:
 *   CREATE INDEX CONCURRENTLY idx_media_objects_owner_id ON media_api.media_objects (created_by, id);
 */
export class OwnerListingIndex1764000000003 implements MigrationInterface {
  name = 'OwnerListingIndex1764000000003';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE INDEX IF NOT EXISTS idx_media_objects_owner_id ON media_api.media_objects (created_by, id)`);
    await q.query(`DROP INDEX IF EXISTS media_api.idx_media_objects_created_by`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`CREATE INDEX IF NOT EXISTS idx_media_objects_created_by ON media_api.media_objects (created_by)`);
    await q.query(`DROP INDEX IF EXISTS media_api.idx_media_objects_owner_id`);
  }
}
