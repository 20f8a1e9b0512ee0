import type { MediaId } from '@jan/mediaid';
import { AllowedMimeType, extensionFor } from './media-types';

export type StorageProvider = 'local' | 's3' | 'gcs';

/** `pending`: reserved for a direct upload, bytes not verified. `ready`: servable. */
export type MediaStatus = 'pending' | 'ready';

/** One stored object: one row in `media_objects`, one object at `storageKey`. */
export interface MediaObject {
  id: MediaId;
  ownerId: string;
  storageProvider: StorageProvider;
  storageKey: string;
  mimeType: AllowedMimeType;
  /** Size of the stored bytes (0 while pending and undeclared). */
  bytes: number;
  /** SHA-256 (hex) of the stored bytes; null while pending. */
  sha256: string | null;
  /** SHA-256 of the bytes as received, when re-encoding changed them. */
  originalSha256: string | null;
  status: MediaStatus;
  pinned: boolean;
  filename: string | null;
  createdAt: Date;
  updatedAt: Date;
  /** When retention deletes the object; null while pinned. */
  retentionUntil: Date | null;
  /** Deadline of a pending direct upload. */
  uploadExpiresAt: Date | null;
}

export function storageKeyFor(id: MediaId, mime: AllowedMimeType): string {
  return `images/${id}.${extensionFor(mime)}`;
}

/**
 * Where a direct upload's client writes its bytes: `uploads/<id>.<ext>` beside the object's own
 * `images/<id>.<ext>`. `complete` checks what is there and writes the bytes it checked to the
 * object's key itself, so an upload URL, valid until it expires, can never replace a checked object.
 */
export function uploadKeyFor(storageKey: string): string {
  return storageKey.replace(/^images\//, 'uploads/');
}

export function isServable(media: MediaObject): boolean {
  return media.status === 'ready';
}
