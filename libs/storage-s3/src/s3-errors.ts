import { DomainError, mediaNotFound } from '@jan/domain';

/** What an S3 SDK error looks like at run time (ServiceException or a network error). */
interface AwsLikeError {
  name?: string;
  code?: string;
  message?: string;
  $fault?: 'client' | 'server';
  $metadata?: { httpStatusCode?: number };
}

function s3Status(error: unknown): number | undefined {
  return (error as AwsLikeError | null)?.$metadata?.httpStatusCode;
}

export function s3ErrorName(error: unknown): string | undefined {
  const e = error as AwsLikeError | null;
  return e?.name ?? e?.code;
}

/**
 * True for "the key is not there": 404 NoSuchKey / NotFound. With `accessDeniedIsNotFound`, also
 * the 403 that S3 answers a reader without s3:ListBucket for an absent key: `AccessDenied`, or a
 * bare 403 to a HEAD, whose answer has no body to name the error (the SDK calls it `Unknown`).
 * Other 403s (`InvalidAccessKeyId`, `SignatureDoesNotMatch`, an expired token…) are the service's
 * own credentials failing, and must not make every object look deleted.
 */
export function isS3Missing(error: unknown, accessDeniedIsNotFound: boolean): boolean {
  const status = s3Status(error);
  const name = s3ErrorName(error);
  if (status === 404 && name !== 'NoSuchBucket') return true;
  if (name === 'NoSuchKey') return true;
  return accessDeniedIsNotFound && status === 403 && (name === 'AccessDenied' || name === 'Unknown' || name === undefined);
}

/**
 * A conditional write (`If-None-Match: *`) refused because an object is at the key: 412
 * PreconditionFailed. Only meaningful for a request that carried the condition.
 */
export function isS3ObjectExists(error: unknown): boolean {
  return s3Status(error) === 412 || s3ErrorName(error) === 'PreconditionFailed';
}

/**
 * Maps anything the SDK throws to a DomainError. Details name the operation and S3's error
 * code only: never the key's signed URL, credentials or request ids of other tenants.
 */
export function toDomainError(error: unknown, operation: string, accessDeniedIsNotFound = false): DomainError {
  if (error instanceof DomainError) return error;
  const status = s3Status(error);
  const name = s3ErrorName(error);
  const details = { provider: 's3', operation, ...(name ? { s3_error: name } : {}), ...(status ? { status } : {}) };
  if (isS3Missing(error, accessDeniedIsNotFound)) return mediaNotFound();
  if (name === 'InvalidRange' || status === 416) {
    return new DomainError('invalid_request', 'requested range is not satisfiable', details, { cause: error });
  }
  if (name === 'BadDigest' || name === 'XAmzContentSHA256Mismatch' || name === 'InvalidDigest') {
    return new DomainError('checksum_mismatch', 'stored bytes do not match the declared checksum', details, { cause: error });
  }
  // Two conditional writes of one key at the same moment: S3 asks for the request again (its
  // retry then meets the object written meanwhile and gets 412). Not the client's fault.
  if (name === 'ConditionalRequestConflict') {
    return new DomainError('storage_unavailable', 'object storage is unavailable', details, { cause: error });
  }
  // SSE-KMS cannot use the configured key (disabled, deleted or pending deletion, not found):
  // S3 answers 400 KMS.*. The bucket's configuration, not the client's request, and it works
  // again once the key is usable.
  if (name?.startsWith('KMS.')) {
    return new DomainError('storage_unavailable', 'object storage is unavailable', details, { cause: error });
  }
  if (name === 'EntityTooLarge') {
    return new DomainError('payload_too_large', 'object is larger than the storage accepts', details, { cause: error });
  }
  // No status means the request never got an answer (refused, reset, timed out): the backend
  // is unavailable. 5xx, throttling and credential/permission problems are the service's
  // fault, not the client's, and are worth retrying later. So is any other 400: the request is
  // ours, not the client's (a bucket's policy or encryption settings, an idle socket S3 gave up
  // on as RequestTimeout), and operators find the S3 error in the log.
  if (status === undefined || status >= 500 || status === 429 || status === 400 || status === 401 || status === 403 || name === 'NoSuchBucket') {
    return new DomainError('storage_unavailable', 'object storage is unavailable', details, { cause: error });
  }
  return new DomainError('internal_error', 'unexpected object storage error', details, { cause: error });
}
