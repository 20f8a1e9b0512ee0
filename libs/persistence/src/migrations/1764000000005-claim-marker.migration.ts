import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `claimed_at`: set by every claim for deletion (`claimForDeletion`, and `closeUpload` when a
 * complete discards its reservation), never cleared; the row is deleted after it. Pins, dedupe
 * keep-alives and `markReady` refuse a row that has it, whatever their own clock says. Before,
 * a claimed row was recognised only as "pending with `upload_expires_at <= now`", with the `now`
 * of the pin or complete: one that had read its clock before the claimer (or on a replica whose
 * clock lags, or against a sweep that uses one `now` for its whole run) still pinned, or made
 * ready, a row whose object was then deleted.
 *
 * The partial index lets the retention sweep take rows that expired since the last sweep before
 * those whose deletion failed then (storage refused: object lock, a retention hold), without
 * reading through the failed ones: `findExpired` puts claimed rows last. Its predicate says
 * `status <> 'ready'` (the same rows as `= 'pending'`, by the status check) so that only this
 * index matches the sweep's query: with `= 'pending'`, the planner also matched
 * `idx_media_objects_pending_deadline` and, when the claimed rows sat at the start of the table,
 * preferred it, filtering every claimed row out of each batch.
 *
 * Rolling deploy: the column is nullable with no default (no table rewrite), and the previous
 * release's statements name their columns, so they run unchanged. But the previous release makes
 * no claims at all (its sweep, purge and DELETE delete the row unconditionally) and its pins and
 * completes do not check the column, so while one of its replicas sweeps, a pin a new replica
 * answered 200 can still be deleted. Turn the sweep off on old replicas during the rollout
 * (docs/operations.md); the guarantee holds once no old replica is left.
 *
 * The index is built in the migration's transaction, which blocks writes to `media_objects`
 * while it runs (it reads the whole table, about a second per million rows, though it holds only
 * the open reservations). On a large table, build it beforehand without blocking, after adding
 * the column (instant), and the migration finds both in place:
 *   ALTER TABLE media_api.media_objects ADD COLUMN IF NOT EXISTS claimed_at timestamptz;
 *   CREATE INDEX CONCURRENTLY idx_media_objects_unclaimed_deadline ON media_api.media_objects (upload_expires_at, id)
 *     WHERE status <> 'ready' AND claimed_at IS NULL;
 */
export class ClaimMarker1764000000005 implements MigrationInterface {
  name = 'ClaimMarker1764000000005';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE media_api.media_objects ADD COLUMN IF NOT EXISTS claimed_at timestamptz`);
    await q.query(`
      CREATE INDEX IF NOT EXISTS idx_media_objects_unclaimed_deadline ON media_api.media_objects (upload_expires_at, id)
       WHERE status <> 'ready' AND claimed_at IS NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    // Rows claimed meanwhile stay closed reservations, which the previous release recognises by
    // their upload deadline and its sweep deletes.
    await q.query(`DROP INDEX IF EXISTS media_api.idx_media_objects_unclaimed_deadline`);
    await q.query(`ALTER TABLE media_api.media_objects DROP COLUMN IF EXISTS claimed_at`);
  }
}
