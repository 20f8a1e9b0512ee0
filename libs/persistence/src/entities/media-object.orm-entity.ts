import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/** Postgres returns `bigint` as a string so that no precision is lost; object sizes fit a double. */
const bigintAsNumber = {
  to: (value: number | null | undefined) => value,
  from: (value: string | number | null) => (value === null ? null : Number(value)),
};

/**
 * One row of `media_api.media_objects`. The first ten columns are the earlier service's table,
 * unchanged, so that its rows stay readable; the rest were added by the TypeScript service.
 * The schema itself is owned by the migrations, never by `synchronize`.
 */
@Entity({ schema: 'media_api', name: 'media_objects' })
// Owner listings and purges page by (created_by, id).
@Index('idx_media_objects_owner_id', ['createdBy', 'id'])
// The retention sweep reads ready, unpinned rows by expiry (migration 1764000000008).
@Index('idx_media_objects_ready_retention', ['retentionUntil', 'id'], { where: `status = 'ready' AND NOT pinned` })
// Per-owner dedupe is decided by this index, so two concurrent uploads of the same bytes cannot
// both become ready rows. Pending rows are outside it: their bytes are not verified yet; so are
// direct uploads completed on first use beside a twin (`dedupe_exempt`, migration 1764000000007).
@Index('uq_media_objects_owner_sha256_ready', ['createdBy', 'sha256'], { unique: true, where: `status = 'ready' AND NOT dedupe_exempt` })
@Index('idx_media_objects_owner_sha256_exempt', ['createdBy', 'sha256'], { where: `status = 'ready' AND dedupe_exempt` })
@Index('idx_media_objects_owner_original_sha256', ['createdBy', 'originalSha256'], { where: 'original_sha256 IS NOT NULL' })
// The retention sweep takes expired reservations nobody has claimed yet before claimed ones.
// `<> 'ready'` rather than `= 'pending'`: see migration 1764000000005.
@Index('idx_media_objects_unclaimed_deadline', ['uploadExpiresAt', 'id'], { where: `status <> 'ready' AND claimed_at IS NULL` })
// ... and claimed ones, whose deletion failed, through this (migration 1764000000008).
@Index('idx_media_objects_claimed_deadline', ['uploadExpiresAt', 'id'], { where: `status = 'pending' AND claimed_at IS NOT NULL` })
// The quota's check for a pending twin (migration 1764000000008).
@Index('idx_media_objects_open_owner_sha256', ['createdBy', 'sha256'], { where: `status = 'pending' AND claimed_at IS NULL` })
export class MediaObjectOrmEntity {
  @PrimaryColumn({ type: 'varchar', length: 40 })
  id!: string;

  @Column({ name: 'storage_provider', type: 'varchar', length: 16 })
  storageProvider!: string;

  @Column({ name: 'storage_key', type: 'varchar', length: 512 })
  storageKey!: string;

  @Column({ name: 'mime_type', type: 'varchar', length: 100 })
  mimeType!: string;

  @Column({ type: 'bigint', default: 0, transformer: bigintAsNumber })
  bytes!: number;

  @Column({ type: 'char', length: 64, nullable: true })
  sha256!: string | null;

  /** The owner: a user's subject or a service's own id. */
  @Column({ name: 'created_by', type: 'varchar', length: 200 })
  createdBy!: string;

  @Column({ name: 'retention_until', type: 'timestamptz', nullable: true })
  retentionUntil!: Date | null;

  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' })
  createdAt!: Date;

  @Column({ name: 'updated_at', type: 'timestamptz', default: () => 'now()' })
  updatedAt!: Date;

  @Column({ name: 'original_sha256', type: 'char', length: 64, nullable: true })
  originalSha256!: string | null;

  @Column({ type: 'varchar', length: 16, default: 'ready' })
  status!: string;

  @Column({ type: 'boolean', default: false })
  pinned!: boolean;

  @Column({ type: 'varchar', length: 255, nullable: true })
  filename!: string | null;

  @Column({ name: 'upload_expires_at', type: 'timestamptz', nullable: true })
  uploadExpiresAt!: Date | null;

  /**
   * When the row was (last) claimed for deletion; null until then. A claimed row is deleted next;
   * nothing pins, keeps alive or completes it any more, whatever the clocks say.
   */
  @Column({ name: 'claimed_at', type: 'timestamptz', nullable: true })
  claimedAt!: Date | null;

  /**
   * A direct upload completed on first use while its owner already had the same bytes: a ready
   * object of its own beside that twin, outside the per-owner dedupe index. False for every other row.
   */
  @Column({ name: 'dedupe_exempt', type: 'boolean', default: false })
  dedupeExempt!: boolean;
}
