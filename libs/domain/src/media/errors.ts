/**
 * Every rejection the service can make, by stable code. Clients match on `code`; the HTTP
 * layer maps each code to a status through one table (apps/media-api/src/http/status-table.ts).
 */
export const ERROR_CODES = [
  'invalid_request',
  'unknown_source_type',
  'invalid_data_url',
  'invalid_remote_url',
  'empty_file',
  'payload_too_large',
  'unsupported_media_type',
  'corrupt_image',
  'image_too_large',
  'remote_fetch_blocked',
  'remote_fetch_failed',
  'remote_fetch_timeout',
  'unauthorized',
  'invalid_signature',
  'url_expired',
  'media_not_found',
  'media_not_ready',
  'upload_expired',
  'size_mismatch',
  'checksum_mismatch',
  'type_mismatch',
  'quota_exceeded',
  'rate_limited',
  'inline_too_large',
  'content_rejected',
  'storage_unavailable',
  'database_unavailable',
  'auth_unavailable',
  'scanner_unavailable',
  'internal_error',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Safe, client-visible extra facts about an error (never secrets, keys or signed URLs). */
export type ErrorDetails = Record<string, unknown>;

/** An expected failure with a stable code. Domain code throws these, never HTTP errors. */
export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetails,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'DomainError';
  }
}

export function isDomainError(error: unknown, code?: ErrorCode): error is DomainError {
  return error instanceof DomainError && (code === undefined || error.code === code);
}

/** The 404 every unreadable id gets, whether it is missing, malformed or someone else's. */
export function mediaNotFound(ids?: readonly string[]): DomainError {
  return new DomainError('media_not_found', 'media not found', ids && ids.length ? { ids: [...ids] } : undefined);
}

/** An upload's bytes over the size limit (`MEDIA_MAX_BYTES`), whichever path they came by. */
export function uploadTooLarge(maxBytes: number): DomainError {
  return new DomainError('payload_too_large', 'upload exceeds the size limit', { max_bytes: maxBytes });
}
