import type { Principal } from '../access/principal';
import type { ErrorCode } from '../media/errors';
import type { MediaObject } from '../media/media-object';

export type IngestSource = 'data_url' | 'remote_url' | 'multipart' | 'direct_upload';

export type MediaEvent =
  | { type: 'ingest.accepted'; principal: Principal; source: IngestSource; media: MediaObject; deduped: boolean; receivedBytes: number }
  /** `owner`: whom the refused upload was for (the caller, or the user it named), when that was settled. */
  | { type: 'ingest.rejected'; principal: Principal; source: IngestSource; code: ErrorCode; mediaId?: string; reason?: string; owner?: string }
  | { type: 'ingest.mime_mismatch'; principal: Principal; source: IngestSource; declared: string; sniffed: string }
  | { type: 'media.deleted'; principal: Principal | null; media: MediaObject; reason: 'request' | 'retention' | 'upload_expired' | 'admin' | 'purge' }
  /** A claimed object whose bytes could not be removed: its row stays claimed for a later try. */
  | { type: 'media.delete_failed'; principal: Principal | null; media: MediaObject; reason: 'request' | 'retention' | 'upload_expired' | 'admin' | 'purge'; code: ErrorCode }
  | { type: 'media.pinned'; principal: Principal; media: MediaObject; pinned: boolean }
  | { type: 'media.reissued'; principal: Principal; media: MediaObject; ttlSeconds: number }
  | { type: 'access.denied'; principal: Principal; action: string; mediaIds: string[] };

/**
 * Things that happened, for metrics and the audit trail. Emitting never fails the request:
 * implementations must not throw.
 */
export abstract class MediaEvents {
  abstract emit(event: MediaEvent): void;
}

export class NoopMediaEvents extends MediaEvents {
  emit(): void {}
}
