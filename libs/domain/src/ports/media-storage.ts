import type { Readable } from 'node:stream';
import type { StorageProvider } from '../media/media-object';

export interface PutOptions {
  contentType: string;
  /** Exact length when known; adapters may use it to pick single vs multipart upload. */
  contentLength?: number;
  /** Hex SHA-256 of the body, already computed by the caller; sent as a checksum where supported. */
  sha256?: string;
  /**
   * A local file holding exactly the bytes of `body` (a staged upload). Adapters on the same
   * machine may copy it in the kernel instead of streaming `body`; then they must not read `body`.
   */
  sourcePath?: string;
  /** The bytes of `body`, already in memory; adapters may write them directly (then they must not read `body`). */
  sourceBuffer?: Buffer;
}

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive; open-ended when omitted. */
  end?: number;
}

export interface StoredObjectInfo {
  bytes: number;
  contentType: string | null;
}

export interface StoredObjectStream extends StoredObjectInfo {
  body: Readable;
}

export interface SignedReadOptions {
  expiresInSeconds: number;
  /** Content-Type the signed response must carry. */
  contentType?: string;
  /** `inline` or `attachment; filename="..."`. */
  contentDisposition?: string;
}

export interface SignedUrl {
  url: string;
  expiresAt: Date;
}

export interface SignedUploadOptions {
  contentType: string;
  expiresInSeconds: number;
  /** Exact size the client declared; bound into the signature where the backend supports it. */
  contentLength?: number;
  /** Upper bound on the upload size (POST policy / content-length-range). */
  maxBytes: number;
  /** Base64 SHA-256 the client declared; bound into the signature where supported. */
  checksumSha256Base64?: string;
}

export interface SignedUpload {
  method: 'PUT' | 'POST';
  url: string;
  /** Headers the client must send with a PUT. */
  headers: Record<string, string>;
  /** Form fields a POST must carry before the file field. */
  fields?: Record<string, string>;
  expiresAt: Date;
}

/**
 * `putNew` found an object already at the key (or another write landed there first): nothing of
 * this write was kept. Not a `DomainError`: what it means is the caller's to decide.
 */
export class ObjectExistsError extends Error {
  constructor(readonly key: string) {
    super(`an object already exists at ${key}`);
    this.name = 'ObjectExistsError';
  }
}

/**
 * Private object storage under keys like `images/<id>.<ext>`. No listing: every key is known
 * from the database. Implementations: local disk, S3 (SSE-KMS), GCS (CMEK).
 */
export abstract class MediaStorage {
  abstract readonly provider: StorageProvider;

  /**
   * Streams `body` to `key`. On failure nothing is left at `key`. Returns the bytes written.
   */
  abstract put(key: string, body: Readable, options: PutOptions): Promise<{ bytes: number }>;

  /**
   * `put` only if nothing is at `key`, decided by the backend at the moment the object is
   * committed (a hard link on disk, `If-None-Match: *` on S3, `ifGenerationMatch=0` on GCS): of
   * two writes racing on one key the first to commit wins, and the other throws
   * `ObjectExistsError` and leaves nothing behind (no second copy, no multipart parts).
   */
  abstract putNew(key: string, body: Readable, options: PutOptions): Promise<{ bytes: number }>;

  /** Opens the object (or a byte range of it). Throws `media_not_found` when absent. */
  abstract get(key: string, range?: ByteRange): Promise<StoredObjectStream>;

  /** Size and type, or null when absent. */
  abstract head(key: string): Promise<StoredObjectInfo | null>;

  /** Removes the object; absent keys are not an error. */
  abstract delete(key: string): Promise<void>;

  /** A short-lived URL that reads the object without other credentials. */
  abstract signedReadUrl(key: string, options: SignedReadOptions): Promise<SignedUrl>;

  /** A short-lived URL (PUT, or POST with fields) a client uses to upload straight to storage. */
  abstract signedUploadUrl(key: string, options: SignedUploadOptions & { method: 'PUT' | 'POST' }): Promise<SignedUpload>;

  /** Cheap round trip for readiness probes. */
  abstract ping(): Promise<void>;
}
