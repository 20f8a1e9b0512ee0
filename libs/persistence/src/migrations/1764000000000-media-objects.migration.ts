import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Creates `media_api.media_objects`, or upgrades the earlier service's table in place: its ten
 * columns keep their names and meaning, its rows become `ready` objects, and the new columns
 * are added. Statements are idempotent because the earlier table may or may not exist.
 */
export class MediaObjects1764000000000 implements MigrationInterface {
  name = 'MediaObjects1764000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(CREATE_SCHEMA);
    await q.query(`
      CREATE TABLE IF NOT EXISTS media_api.media_objects (
        id               varchar(40)  PRIMARY KEY,
        storage_provider varchar(16)  NOT NULL,
        storage_key      varchar(512) NOT NULL,
        mime_type        varchar(100) NOT NULL,
        bytes            bigint       NOT NULL DEFAULT 0,
        sha256           char(64),
        created_by       varchar(200) NOT NULL,
        retention_until  timestamptz,
        created_at       timestamptz  NOT NULL DEFAULT now(),
        updated_at       timestamptz  NOT NULL DEFAULT now()
      )`);
    // The earlier table may have required these; pending uploads and pinned objects need nulls.
    await q.query(`ALTER TABLE media_api.media_objects ALTER COLUMN sha256 DROP NOT NULL`);
    await q.query(`ALTER TABLE media_api.media_objects ALTER COLUMN retention_until DROP NOT NULL`);
    await q.query(`
      ALTER TABLE media_api.media_objects
        ALTER COLUMN bytes SET DEFAULT 0,
        ALTER COLUMN created_at SET DEFAULT now(),
        ALTER COLUMN updated_at SET DEFAULT now()`);
    await q.query(`
      ALTER TABLE media_api.media_objects
        ADD COLUMN IF NOT EXISTS original_sha256   char(64),
        ADD COLUMN IF NOT EXISTS status            varchar(16) NOT NULL DEFAULT 'ready'
          CONSTRAINT ck_media_objects_status CHECK (status IN ('pending', 'ready')),
        ADD COLUMN IF NOT EXISTS pinned            boolean NOT NULL DEFAULT false,
        ADD COLUMN IF NOT EXISTS filename          varchar(255),
        ADD COLUMN IF NOT EXISTS upload_expires_at timestamptz`);
    // A global unique index on sha256 (the earlier global dedupe) would make a second owner's
    // upload of the same bytes fail; dedupe is per owner now, decided by the partial index below.
    await q.query(DROP_GLOBAL_SHA256_UNIQUENESS);
    await q.query(`CREATE INDEX IF NOT EXISTS idx_media_objects_sha256 ON media_api.media_objects (sha256)`);
    await q.query(`CREATE INDEX IF NOT EXISTS idx_media_objects_created_by ON media_api.media_objects (created_by)`);
    await q.query(`CREATE INDEX IF NOT EXISTS idx_media_objects_created_at ON media_api.media_objects (created_at)`);
    await q.query(`CREATE INDEX IF NOT EXISTS idx_media_objects_retention_until ON media_api.media_objects (retention_until)`);
    await q.query(`
      CREATE UNIQUE INDEX IF NOT EXISTS uq_media_objects_owner_sha256_ready
        ON media_api.media_objects (created_by, sha256) WHERE status = 'ready'`);
    await q.query(`
      CREATE INDEX IF NOT EXISTS idx_media_objects_owner_original_sha256
        ON media_api.media_objects (created_by, original_sha256) WHERE original_sha256 IS NOT NULL`);
    await q.query(`
      CREATE INDEX IF NOT EXISTS idx_media_objects_pending_deadline
        ON media_api.media_objects (upload_expires_at) WHERE status = 'pending'`);
  }

  /** Back to the earlier table's shape; rows and the table itself stay. */
  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS media_api.idx_media_objects_pending_deadline`);
    await q.query(`DROP INDEX IF EXISTS media_api.idx_media_objects_owner_original_sha256`);
    await q.query(`DROP INDEX IF EXISTS media_api.uq_media_objects_owner_sha256_ready`);
    await q.query(`
      ALTER TABLE media_api.media_objects
        DROP COLUMN IF EXISTS upload_expires_at,
        DROP COLUMN IF EXISTS filename,
        DROP COLUMN IF EXISTS pinned,
        DROP COLUMN IF EXISTS status,
        DROP COLUMN IF EXISTS original_sha256`);
  }
}

/**
 * `CREATE SCHEMA IF NOT EXISTS` still needs CREATE on the database, which an application role
 * usually lacks when an operator made the schema beforehand; ask only when it is missing.
 */
export const CREATE_SCHEMA = `
  DO $$
  BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'media_api') THEN
      CREATE SCHEMA IF NOT EXISTS media_api;
    END IF;
  END
  $$`;

const DROP_GLOBAL_SHA256_UNIQUENESS = `
  DO $$
  DECLARE
    found record;
  BEGIN
    FOR found IN
      SELECT i.indexrelid::regclass::text AS index_name, c.conname AS constraint_name
        FROM pg_index i
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
       WHERE i.indrelid = 'media_api.media_objects'::regclass
         AND i.indisunique AND NOT i.indisprimary
         AND i.indnatts = 1 AND a.attname = 'sha256'
    LOOP
      IF found.constraint_name IS NOT NULL THEN
        EXECUTE format('ALTER TABLE media_api.media_objects DROP CONSTRAINT %I', found.constraint_name);
      ELSE
        EXECUTE format('DROP INDEX %s', found.index_name);
      END IF;
    END LOOP;
  END
  $$`;
