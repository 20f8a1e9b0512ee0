import type { MigrationInterface, QueryRunner } from 'typeorm';
import { ONE_ROW_USAGE_FUNCTION } from './1764000000002-owner-usage.migration';

/** Slots per owner in `owner_usage`. A backend always writes the slot `pg_backend_pid() % SLOTS`. */
export const USAGE_SLOTS = 16;

/**
 * Usage moves to `owner_usage_slots`, up to 16 rows per owner: the trigger adds each change to the
 * row of the backend that makes it (`pg_backend_pid() % 16`). `owner_usage` becomes a view of the
 * sums, with the columns the table had, so every reader (the previous release's included) reads
 * the same totals as before.
 *
 * Why: with one row per owner, every insert of that owner updated the same row and held its lock
 * until the commit had reached the disk, so one owner's uploads (a heavy user, or a service
 * uploading as itself) were committed one at a time: at most one per WAL flush, with a sleep and a
 * wake-up per waiter. Measured against PostgreSQL 15 here, 16 concurrent inserts of one owner:
 * 880–1,180 rows/s at 980–1,220 µs of server CPU per row, against 2,400 rows/s at 500 µs for 16
 * owners (docs/performance.md, seventh pass). With a row per connection, one owner's inserts no
 * longer wait on each other.
 *
 * Quotas stay exact: an insert that is subject to a quota takes a transaction-scoped advisory lock
 * on its owner first (see the repository), so those inserts still run one at a time per owner and
 * each sees the others' usage. Inserts without limits never take it.
 *
 * During a rolling upgrade, the previous release reads the right totals through the view, but its
 * limited inserts no longer wait for each other (it relied on the one row's lock): uploads of one
 * owner racing on old replicas in that window may overshoot a quota by the uploads in the race.
 */
export class ShardedOwnerUsage1764000000004 implements MigrationInterface {
  name = 'ShardedOwnerUsage1764000000004';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE media_api.owner_usage RENAME TO owner_usage_slots`);
    await q.query(`ALTER TABLE media_api.owner_usage_slots ADD COLUMN slot smallint NOT NULL DEFAULT 0`);
    await q.query(`ALTER TABLE media_api.owner_usage_slots DROP CONSTRAINT owner_usage_pkey`);
    await q.query(`ALTER TABLE media_api.owner_usage_slots ADD CONSTRAINT owner_usage_slots_pkey PRIMARY KEY (owner_id, slot)`);
    await q.query(`
      CREATE VIEW media_api.owner_usage AS
      SELECT owner_id, sum(objects)::bigint AS objects, sum(bytes)::bigint AS bytes, max(updated_at) AS updated_at
        FROM media_api.owner_usage_slots
       GROUP BY owner_id`);
    await q.query(`
      CREATE OR REPLACE FUNCTION media_api.media_objects_track_usage() RETURNS trigger
      LANGUAGE plpgsql AS $$
      DECLARE
        my_slot smallint := pg_backend_pid() % ${USAGE_SLOTS};
      BEGIN
        IF TG_OP IN ('DELETE', 'UPDATE') AND OLD.created_by IS NOT NULL THEN
          INSERT INTO media_api.owner_usage_slots AS u (owner_id, slot, objects, bytes)
               VALUES (OLD.created_by, my_slot, -1, -OLD.bytes)
          ON CONFLICT (owner_id, slot) DO UPDATE
                  SET objects = u.objects - 1, bytes = u.bytes - OLD.bytes, updated_at = now();
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.created_by IS NOT NULL THEN
          INSERT INTO media_api.owner_usage_slots AS u (owner_id, slot, objects, bytes)
               VALUES (NEW.created_by, my_slot, 1, NEW.bytes)
          ON CONFLICT (owner_id, slot) DO UPDATE
                  SET objects = u.objects + 1, bytes = u.bytes + EXCLUDED.bytes, updated_at = now();
        END IF;
        RETURN NULL;
      END
      $$`);
  }

  async down(q: QueryRunner): Promise<void> {
    // Fold every owner's slots back into one row, then restore the table and its one-row trigger.
    await q.query(`DROP VIEW media_api.owner_usage`);
    await q.query(`
      CREATE TEMPORARY TABLE owner_usage_folded ON COMMIT DROP AS
      SELECT owner_id, sum(objects)::bigint AS objects, sum(bytes)::bigint AS bytes, max(updated_at) AS updated_at
        FROM media_api.owner_usage_slots
       GROUP BY owner_id`);
    await q.query(`DELETE FROM media_api.owner_usage_slots`);
    await q.query(`ALTER TABLE media_api.owner_usage_slots DROP CONSTRAINT owner_usage_slots_pkey`);
    await q.query(`ALTER TABLE media_api.owner_usage_slots DROP COLUMN slot`);
    await q.query(`ALTER TABLE media_api.owner_usage_slots RENAME TO owner_usage`);
    await q.query(`ALTER TABLE media_api.owner_usage ADD CONSTRAINT owner_usage_pkey PRIMARY KEY (owner_id)`);
    await q.query(`
      INSERT INTO media_api.owner_usage (owner_id, objects, bytes, updated_at)
      SELECT owner_id, objects, bytes, updated_at FROM owner_usage_folded`);
    await q.query(ONE_ROW_USAGE_FUNCTION);
  }
}
