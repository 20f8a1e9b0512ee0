import { DomainError, mediaNotFound } from '@jan/domain';

/** GCS ApiError carries the HTTP status in `code`; transport errors carry a string code. */
function gcsStatus(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/**
 * GCS answers 404 for a missing bucket as for a missing object; only its message tells them apart
 * ("The specified bucket does not exist."). A missing bucket is a misconfiguration, not a missing
 * object: readiness must fail and reads must not answer `media_not_found` for every id.
 */
function isGcsMissingBucket(error: unknown): boolean {
  const message = (error as { message?: unknown } | null)?.message;
  return gcsStatus(error) === 404 && typeof message === 'string' && /bucket does not exist/i.test(message);
}

export function isGcsMissing(error: unknown): boolean {
  return gcsStatus(error) === 404 && !isGcsMissingBucket(error);
}

/**
 * A write with `ifGenerationMatch` refused: 412, the key holds another generation (for 0: any
 * object). A single-request upload fails with an ApiError (`code: 412`); a resumable one, whose
 * session request GCS refuses, with the transport's GaxiosError (`response.status: 412`).
 */
export function isGcsPreconditionFailed(error: unknown): boolean {
  const response = (error as { response?: { status?: unknown } } | null)?.response;
  return gcsStatus(error) === 412 || response?.status === 412;
}

/** Maps anything @google-cloud/storage throws to a DomainError; details carry no secrets. */
export function toDomainError(error: unknown, operation: string): DomainError {
  if (error instanceof DomainError) return error;
  const status = gcsStatus(error);
  const details = { provider: 'gcs', operation, ...(status ? { status } : {}) };
  if (isGcsMissingBucket(error)) return new DomainError('storage_unavailable', 'object storage is unavailable', { ...details, gcs_error: 'bucket_not_found' }, { cause: error });
  if (status === 404) return mediaNotFound();
  if (status === 416) return new DomainError('invalid_request', 'requested range is not satisfiable', details, { cause: error });
  if (status === 413) return new DomainError('payload_too_large', 'object is larger than the storage accepts', details, { cause: error });
  // The client library's own post-upload hash validation (crc32c/md5).
  const libraryCode = (error as { code?: unknown } | null)?.code;
  if (libraryCode === 'FILE_NO_UPLOAD' || libraryCode === 'CONTENT_DOWNLOAD_MISMATCH') {
    return new DomainError('checksum_mismatch', 'stored bytes do not match their checksum', details, { cause: error });
  }
  // No status: refused, reset, DNS, timeout. 5xx, throttling and credential or permission
  // problems are the service's side, not the client's; so is a 400 (the request is ours: a
  // bucket's retention or encryption settings, a bad option), which the log details.
  if (status === undefined || status >= 500 || status === 429 || status === 400 || status === 401 || status === 403) {
    return new DomainError('storage_unavailable', 'object storage is unavailable', details, { cause: error });
  }
  return new DomainError('internal_error', 'unexpected object storage error', details, { cause: error });
}
