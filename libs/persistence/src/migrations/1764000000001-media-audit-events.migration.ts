import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * `media_api.media_audit_events`: who did what to which object, and how it ended. No foreign key
 * to `media_objects`: the trail must outlive the objects it describes. Rows are never updated
 * (a trigger refuses it); deleting old rows stays possible for the operator's retention policy.
 */
export class MediaAuditEvents1764000000001 implements MigrationInterface {
  name = 'MediaAuditEvents1764000000001';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE IF NOT EXISTS media_api.media_audit_events (
        id          bigserial    PRIMARY KEY,
        occurred_at timestamptz  NOT NULL DEFAULT now(),
        actor_kind  varchar(16)  NOT NULL,
        actor_id    varchar(200) NOT NULL,
        action      varchar(40)  NOT NULL,
        media_id    varchar(40),
        outcome     varchar(16)  NOT NULL,
        reason_code varchar(64),
        request_id  varchar(100),
        trace_id    varchar(64),
        client_ip   varchar(64),
        details     jsonb
      )`);
    await q.query(`
      CREATE INDEX IF NOT EXISTS idx_media_audit_events_media_id
        ON media_api.media_audit_events (media_id, occurred_at)`);
    await q.query(`
      CREATE INDEX IF NOT EXISTS idx_media_audit_events_occurred_at
        ON media_api.media_audit_events (occurred_at)`);
    await q.query(`
      CREATE OR REPLACE FUNCTION media_api.media_audit_events_append_only() RETURNS trigger
      LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'media_api.media_audit_events is append-only' USING ERRCODE = 'insufficient_privilege';
      END
      $$`);
    await q.query(`DROP TRIGGER IF EXISTS trg_media_audit_events_append_only ON media_api.media_audit_events`);
    await q.query(`
      CREATE TRIGGER trg_media_audit_events_append_only
        BEFORE UPDATE ON media_api.media_audit_events
        FOR EACH ROW EXECUTE FUNCTION media_api.media_audit_events_append_only()`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE IF EXISTS media_api.media_audit_events`);
    await q.query(`DROP FUNCTION IF EXISTS media_api.media_audit_events_append_only()`);
  }
}
