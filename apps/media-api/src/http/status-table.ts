import type { ErrorCode } from '@jan/domain';

/** Codes that only the HTTP layer produces. */
export type HttpErrorCode =
  | 'route_not_found'
  | 'method_not_allowed'
  | 'idempotency_key_reused'
  | 'range_not_satisfiable'
  | 'request_timeout'
  | 'headers_too_large';

/** A refusal only the HTTP layer makes, with its stable code (mapped like a DomainError). */
export class HttpError extends Error {
  constructor(
    readonly code: HttpErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/**
 * The one table from stable error code to HTTP status. docs/api.md lists the same table;
 * a unit test keeps them in step.
 */
export const STATUS_BY_CODE: Record<ErrorCode | HttpErrorCode, number> = {
  invalid_request: 400,
  unknown_source_type: 400,
  invalid_data_url: 400,
  invalid_remote_url: 400,
  empty_file: 400,
  remote_fetch_blocked: 400,
  unauthorized: 401,
  invalid_signature: 403,
  url_expired: 403,
  media_not_found: 404,
  route_not_found: 404,
  media_not_ready: 409,
  method_not_allowed: 405,
  request_timeout: 408,
  upload_expired: 410,
  payload_too_large: 413,
  range_not_satisfiable: 416,
  inline_too_large: 413,
  headers_too_large: 431,
  unsupported_media_type: 415,
  corrupt_image: 422,
  image_too_large: 422,
  size_mismatch: 422,
  checksum_mismatch: 422,
  type_mismatch: 422,
  content_rejected: 422,
  idempotency_key_reused: 422,
  quota_exceeded: 429,
  rate_limited: 429,
  remote_fetch_failed: 502,
  storage_unavailable: 503,
  database_unavailable: 503,
  auth_unavailable: 503,
  scanner_unavailable: 503,
  remote_fetch_timeout: 504,
  internal_error: 500,
};

export function statusOf(code: ErrorCode | HttpErrorCode): number {
  return STATUS_BY_CODE[code] ?? 500;
}
