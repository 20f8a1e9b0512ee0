import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The trigger function as this migration made it: one row per owner. Migration 1764000000004
 * replaced it and puts it back on the way down.
 */
export const ONE_ROW_USAGE_FUNCTION = `
      CREATE OR REPLACE FUNCTION media_api.media_objects_track_usage() RETURNS trigger
      LANGUAGE plpgsql AS $$
      BEGIN
        IF TG_OP IN ('DELETE', 'UPDATE') AND OLD.created_by IS NOT NULL THEN
          UPDATE media_api.owner_usage
             SET objects = objects - 1, bytes = bytes - OLD.bytes, updated_at = now()
           WHERE owner_id = OLD.created_by;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.created_by IS NOT NULL THEN
          INSERT INTO media_api.owner_usage AS u (owner_id, objects, bytes)
               VALUES (NEW.created_by, 1, NEW.bytes)
          ON CONFLICT (owner_id) DO UPDATE
                  SET objects = u.objects + 1, bytes = u.bytes + EXCLUDED.bytes, updated_at = now();
        END IF;
        RETURN NULL;
      END
      $$`;

/**
 * `media_api.owner_usage`: objects and bytes per owner, kept by a trigger on `media_objects` so
 * that every path that adds, grows or removes a row (ingest, complete, delete, purge, retention,
 * an operator's manual DELETE) keeps it exact. Quota checks read the row the trigger has just
 * locked, in the same transaction as the insert, so concurrent uploads of one owner serialize on
 * it and cannot overshoot. Backfilled from existing rows (the earlier service's included).
 * Migration 1764000000004 splits each owner's row into slots.
 */
export class OwnerUsage1764000000002 implements MigrationInterface {
  name = 'OwnerUsage1764000000002';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE IF NOT EXISTS media_api.owner_usage (
        owner_id   varchar(200) PRIMARY KEY,
        objects    bigint       NOT NULL DEFAULT 0,
        bytes      bigint       NOT NULL DEFAULT 0,
        updated_at timestamptz  NOT NULL DEFAULT now()
      )`);
    await q.query(ONE_ROW_USAGE_FUNCTION);
    await q.query(`DROP TRIGGER IF EXISTS trg_media_objects_usage ON media_api.media_objects`);
    // Only changes that move usage fire it; pin, retention and status updates do not.
    await q.query(`
      CREATE TRIGGER trg_media_objects_usage
        AFTER INSERT OR DELETE OR UPDATE OF bytes, created_by ON media_api.media_objects
        FOR EACH ROW
        EXECUTE FUNCTION media_api.media_objects_track_usage()`);
    await q.query(`
      INSERT INTO media_api.owner_usage (owner_id, objects, bytes)
      SELECT created_by, count(*), coalesce(sum(bytes), 0)
        FROM media_api.media_objects
       WHERE created_by IS NOT NULL
       GROUP BY created_by
      ON CONFLICT (owner_id) DO UPDATE SET objects = EXCLUDED.objects, bytes = EXCLUDED.bytes, updated_at = now()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER IF EXISTS trg_media_objects_usage ON media_api.media_objects`);
    await q.query(`DROP FUNCTION IF EXISTS media_api.media_objects_track_usage()`);
    await q.query(`DROP TABLE IF EXISTS media_api.owner_usage`);
  }
}
