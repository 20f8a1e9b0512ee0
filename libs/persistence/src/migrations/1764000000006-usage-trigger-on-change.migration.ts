import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The usage trigger fires on an UPDATE only when the bytes or the owner really change.
 *
 * `AFTER UPDATE OF bytes, created_by` fires whenever a statement's SET list names one of the
 * columns, whatever the values: `markReady` sets `bytes` (a direct upload may store other bytes
 * than it declared), so every ingest, which writes its row pending and then makes it ready with
 * the same bytes (crash consistency, docs/architecture.md), ran the trigger's two slot upserts for
 * nothing: taking one object and its bytes off the owner's usage and adding them back. On the
 * ingest benchmark that doubled PostgreSQL's CPU per new upload (docs/performance.md, tenth pass).
 * A `WHEN` clause cannot read OLD in an INSERT trigger or NEW in a DELETE one, so inserts and
 * deletes keep a trigger of their own and updates get one with the condition.
 *
 * Rolling deploy: the function is unchanged, and both triggers are swapped in the migration's
 * transaction, so every statement, the previous release's included, is counted by exactly one of
 * the two definitions.
 */
export class UsageTriggerOnChange1764000000006 implements MigrationInterface {
  name = 'UsageTriggerOnChange1764000000006';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER IF EXISTS trg_media_objects_usage ON media_api.media_objects`);
    await q.query(`DROP TRIGGER IF EXISTS trg_media_objects_usage_update ON media_api.media_objects`);
    await q.query(`
      CREATE TRIGGER trg_media_objects_usage
        AFTER INSERT OR DELETE ON media_api.media_objects
        FOR EACH ROW
        EXECUTE FUNCTION media_api.media_objects_track_usage()`);
    await q.query(`
      CREATE TRIGGER trg_media_objects_usage_update
        AFTER UPDATE OF bytes, created_by ON media_api.media_objects
        FOR EACH ROW
        WHEN (OLD.bytes IS DISTINCT FROM NEW.bytes OR OLD.created_by IS DISTINCT FROM NEW.created_by)
        EXECUTE FUNCTION media_api.media_objects_track_usage()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TRIGGER IF EXISTS trg_media_objects_usage_update ON media_api.media_objects`);
    await q.query(`DROP TRIGGER IF EXISTS trg_media_objects_usage ON media_api.media_objects`);
    await q.query(`
      CREATE TRIGGER trg_media_objects_usage
        AFTER INSERT OR DELETE OR UPDATE OF bytes, created_by ON media_api.media_objects
        FOR EACH ROW
        EXECUTE FUNCTION media_api.media_objects_track_usage()`);
  }
}
