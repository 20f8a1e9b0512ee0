import type { AllowedMimeType, MediaObject, MediaStatus, StorageProvider } from '@jan/domain';
import type { MediaId } from '@jan/mediaid';
import { MediaObjectOrmEntity } from '../entities/media-object.orm-entity';

/** A `media_objects` row as the `pg` driver returns it from raw SQL (every column, by name). */
export interface MediaObjectRow {
  id: string;
  storage_provider: string;
  storage_key: string;
  mime_type: string;
  bytes: string | number;
  sha256: string | null;
  created_by: string | null;
  retention_until: Date | null;
  created_at: Date;
  updated_at: Date;
  original_sha256: string | null;
  status: string;
  pinned: boolean;
  filename: string | null;
  upload_expires_at: Date | null;
  /** Set once the row is claimed for deletion (migration 1764000000005). Not part of the domain object. */
  claimed_at?: Date | null;
}

/** Between the domain's `MediaObject` and the `media_objects` table. */
export const MediaObjectMapper = {
  toPersistence(media: MediaObject): MediaObjectOrmEntity {
    const entity = new MediaObjectOrmEntity();
    entity.id = media.id;
    entity.createdBy = media.ownerId;
    entity.storageProvider = media.storageProvider;
    entity.storageKey = media.storageKey;
    entity.mimeType = media.mimeType;
    entity.bytes = media.bytes;
    entity.sha256 = media.sha256;
    entity.originalSha256 = media.originalSha256;
    entity.status = media.status;
    entity.pinned = media.pinned;
    entity.filename = media.filename;
    entity.createdAt = media.createdAt;
    entity.updatedAt = media.updatedAt;
    entity.retentionUntil = media.retentionUntil;
    entity.uploadExpiresAt = media.uploadExpiresAt;
    return entity;
  },

  /** A row no other holder can change: its dates are new objects too. */
  copyRow(row: MediaObjectRow): MediaObjectRow {
    const date = (value: Date | null) => (value === null ? null : new Date(value));
    return {
      ...row,
      created_at: new Date(row.created_at),
      updated_at: new Date(row.updated_at),
      retention_until: date(row.retention_until),
      upload_expires_at: date(row.upload_expires_at),
      ...(row.claimed_at === undefined ? {} : { claimed_at: date(row.claimed_at) }),
    };
  },

  rowToDomain(row: MediaObjectRow): MediaObject {
    return {
      id: row.id as MediaId,
      // Rows written by the earlier service may lack an owner; '' matches no principal.
      ownerId: row.created_by ?? '',
      storageProvider: row.storage_provider as StorageProvider,
      storageKey: row.storage_key,
      mimeType: row.mime_type as AllowedMimeType,
      bytes: Number(row.bytes),
      sha256: row.sha256,
      originalSha256: row.original_sha256,
      status: row.status as MediaStatus,
      pinned: row.pinned,
      filename: row.filename,
      createdAt: row.created_at,
      updatedAt: row.updated_at,
      retentionUntil: row.retention_until,
      uploadExpiresAt: row.upload_expires_at,
      claimedAt: row.claimed_at ?? undefined,
    };
  },
};
