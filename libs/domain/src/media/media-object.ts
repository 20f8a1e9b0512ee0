import type { MediaId } from '@jan/mediaid';
import { AllowedMimeType, extensionFor } from './media-types';

export type StorageProvider = 'local' | 's3' | 'gcs';

/**
 * `pending`: bytes not stored and verified yet (a direct upload's reservation, or an ingest's row,
 * written before its bytes). `ready`: servable. A pending row
 * whose upload deadline has passed is closed: nothing can start completing it any more, and the
 * retention sweep deletes it with its bytes. Deletions claim a row by closing it first and
 * marking it claimed in the repository (see `MediaRepository.claimForDeletion`); a complete
 * already under way when the deadline passed can still make a closed row ready, a claimed one
 * never.
 */
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
  /** SHA-256 (hex) of the stored bytes; on a direct upload's reservation, the declared one or null. */
  sha256: string | null;
  /** SHA-256 of the bytes as received, when re-encoding changed them. */
  originalSha256: string | null;
  status: MediaStatus;
  pinned: boolean;
  filename: string | null;
  createdAt: Date;
  updatedAt: Date;
  /** When retention deletes the object; null while pinned, with retention off, or until first made ready. */
  retentionUntil: Date | null;
  /** Deadline of a pending row (a direct upload's, or an ingest's); null once ready. */
  uploadExpiresAt: Date | null;
  /**
   * When the row was claimed for deletion (or its direct upload discarded): it is on its way out,
   * and only an admin still sees it. Absent or null otherwise.
   */
  claimedAt?: Date | null;
}

export function storageKeyFor(id: MediaId, mime: AllowedMimeType): string {
  return `images/${id}.${extensionFor(mime)}`;
}

/**
 * A new pending row: the intent written before an object's bytes (an ingest's, or a direct
 * upload's reservation), open until `uploadExpiresAt`, stored under `storageKeyFor` its id.
 */
export function newPendingObject(fields: {
  id: MediaId;
  ownerId: string;
  storageProvider: StorageProvider;
  mimeType: AllowedMimeType;
  bytes: number;
  sha256: string | null;
  originalSha256: string | null;
  filename: string | null;
  now: Date;
  uploadExpiresAt: Date;
}): MediaObject {
  // Every field by name, in the interface's order (as rows read back are built): an object rest
  // and spread here cost ~6 µs a call.
  return {
    id: fields.id,
    ownerId: fields.ownerId,
    storageProvider: fields.storageProvider,
    storageKey: storageKeyFor(fields.id, fields.mimeType),
    mimeType: fields.mimeType,
    bytes: fields.bytes,
    sha256: fields.sha256,
    originalSha256: fields.originalSha256,
    status: 'pending',
    pinned: false,
    filename: fields.filename,
    createdAt: fields.now,
    updatedAt: fields.now,
    retentionUntil: null,
    uploadExpiresAt: fields.uploadExpiresAt,
  };
}

/**
 * Where a direct upload's client writes its bytes: `uploads/<id>.<ext>` beside the object's own
 * `images/<id>.<ext>`. `complete` checks what is there and writes the bytes it checked to the
 * object's key itself, so an upload URL, valid until it expires, can never replace a checked object.
 */
export function uploadKeyFor(storageKey: string): string {
  return storageKey.replace(/^images\//, 'uploads/');
}

/**
 * Whether the object may be read, signed or resolved at `now`: ready, and not past its retention.
 * An object past retention is gone for readers even before the sweep deletes it, so that what a
 * client can fetch never depends on when the sweep last ran.
 */
export function isServable(media: MediaObject, now: Date): boolean {
  return media.status === 'ready' && !isPastRetention(media, now);
}

/** Ready, unpinned and past `retentionUntil`: what the retention sweep deletes. */
function isPastRetention(media: MediaObject, now: Date): boolean {
  return media.status === 'ready' && !media.pinned && media.retentionUntil !== null && media.retentionUntil <= now;
}
