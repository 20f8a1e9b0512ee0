import type { Principal } from '../../access/principal';
import type { MediaObject } from '../media-object';

/**
 * "Complete on first use": Jan's older clients prepare a direct upload, PUT the bytes and then
 * use the id, never calling `complete`. The read paths (serve, presign, resolve) hand a pending
 * row they found to this seam, which verifies it as `complete` would. Implemented by
 * `DirectUpload` and passed to the read use cases by whoever wires them (not to `MediaAccess`,
 * which `DirectUpload` itself depends on).
 */
export interface PendingUploadCompleter {
  /**
   * The ready object `media` (a pending row the principal may read) became by being verified now,
   * or null when it is no open direct upload with an upload waiting, or its verification failed:
   * the caller then answers as for any pending id. When the bytes were already stored for the
   * owner, `media` still becomes a ready object of its own (with its own copy of the bytes), so
   * that the id its old client keeps goes on working; only when the owner's quotas (bytes or
   * objects) refuse that copy is the answer the twin, under its own id (and `media` is discarded).
   */
  completeOnFirstUse(principal: Principal, media: MediaObject): Promise<MediaObject | null>;
}
