import { createHash } from 'node:crypto';
import { Transform, type Readable, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Storage, type StorageOptions, type File } from '@google-cloud/storage';
import {
  DomainError,
  guardAgainstStall,
  MediaStorage,
  ObjectExistsError,
  type ByteRange,
  type PutOptions,
  type SignedReadOptions,
  type SignedUpload,
  type SignedUploadOptions,
  type SignedUrl,
  type StorageProvider,
  type StoredObjectInfo,
  type StoredObjectStream,
} from '@jan/domain';
import { isGcsMissing, isGcsPreconditionFailed, toDomainError } from './gcs-errors';

/** A service account key, as a file or inline. Omitted: ADC / workload identity. */
export type GcsCredentials = { keyFilename: string } | { client_email: string; private_key: string };

/** Which of the adapter's Storage clients a hook is looking at. */
export type GcsClientRole = 'data' | 'sign-upload' | 'sign-read';

export interface GcsMediaStorageOptions {
  bucket: string;
  projectId?: string;
  /** CMEK: `projects/…/locations/…/keyRings/…/cryptoKeys/…`, sent on every write. */
  kmsKeyName?: string;
  /** Custom endpoint (emulator, private service connect). Default: storage.googleapis.com. */
  apiEndpoint?: string;
  /**
   * With a custom `apiEndpoint` the client library sends no credentials unless told to; the
   * emulator wants none, a private endpoint in front of real GCS wants them.
   */
  authenticateCustomEndpoint?: boolean;
  /** Identity for data operations (save, read, metadata, delete). */
  credentials?: GcsCredentials;
  /** Identity that signs upload URLs and POST policies; falls back to `credentials`. */
  uploadSigner?: GcsCredentials;
  /** Identity that signs read URLs; falls back to `credentials`. */
  serveSigner?: GcsCredentials;
  /**
   * Resumable uploads survive dropped connections on large bodies and are the right default on
   * real GCS. The firebase-tools emulator fails multi-chunk resumable uploads: use `false` there.
   */
  resumable?: boolean;
  /** A key probed by `ping()`; 404 counts as healthy (reachable and authorized). */
  pingKey?: string;
  /** Per-request timeout, ms. */
  requestTimeoutMs?: number;
  /** Retries for idempotent calls; the library's default (3 over up to 600 s) stalls requests. */
  maxRetries?: number;
  /** Called once per Storage client the adapter creates (instrumentation, tests). */
  configureClient?: (storage: Storage, role: GcsClientRole) => void;
}

const MAX_SIGN_SECONDS = 7 * 24 * 3600;

/**
 * MediaStorage on Google Cloud Storage: private objects (no ACLs written), CMEK on every write,
 * V4 signed URLs from separate signer identities for uploads and reads, no list calls.
 */
export class GcsMediaStorage extends MediaStorage {
  readonly provider: StorageProvider = 'gcs';
  private readonly data: Storage;
  private readonly uploadSigning: Storage;
  private readonly readSigning: Storage;

  constructor(private readonly options: GcsMediaStorageOptions) {
    super();
    if (!options.bucket) throw new Error('GcsMediaStorage: bucket is required');
    this.data = this.client('data', options.credentials);
    this.uploadSigning = options.uploadSigner ? this.client('sign-upload', options.uploadSigner) : this.data;
    this.readSigning = options.serveSigner ? this.client('sign-read', options.serveSigner) : this.data;
  }

  private client(role: GcsClientRole, credentials: GcsCredentials | undefined): Storage {
    const maxRetries = this.options.maxRetries ?? 2;
    const config: StorageOptions = {
      projectId: this.options.projectId,
      apiEndpoint: this.options.apiEndpoint,
      useAuthWithCustomEndpoint: this.options.authenticateCustomEndpoint ?? false,
      timeout: this.options.requestTimeoutMs ?? 30_000,
      // The library reads maxRetries: 0 as "use the default (3)": switch retries off instead.
      retryOptions: maxRetries > 0 ? { autoRetry: true, maxRetries, totalTimeout: 60, maxRetryDelay: 4 } : { autoRetry: false },
      ...(credentials && 'keyFilename' in credentials ? { keyFilename: credentials.keyFilename } : {}),
      ...(credentials && 'client_email' in credentials ? { credentials } : {}),
    };
    const storage = new Storage(config);
    this.options.configureClient?.(storage, role);
    return storage;
  }

  private file(storage: Storage, key: string, generation?: number | string): File {
    return storage.bucket(this.options.bucket).file(key, {
      ...(this.options.kmsKeyName ? { kmsKeyName: this.options.kmsKeyName } : {}),
      ...(generation !== undefined ? { generation: Number(generation) } : {}),
    });
  }

  /**
   * Streams to GCS while counting and hashing. Size and declared SHA-256 (GCS has no SHA-256
   * of its own) are checked before the stream ends, so a mismatch aborts the upload instead of
   * committing it; a body error aborts it the same way. The library then checks crc32c/md5
   * against what GCS stored and deletes the object on a mismatch.
   */
  async put(key: string, body: Readable, options: PutOptions): Promise<{ bytes: number }> {
    return this.write(key, body, options, false);
  }

  /**
   * `put` with the precondition `ifGenerationMatch=0` (no live object at the key), which GCS
   * checks when it commits the object (a single upload, or the final chunk of a resumable one):
   * 412 when one is there, and nothing of this write is kept.
   */
  async putNew(key: string, body: Readable, options: PutOptions): Promise<{ bytes: number }> {
    return this.write(key, body, options, true);
  }

  private async write(key: string, body: Readable, options: PutOptions, onlyIfAbsent: boolean): Promise<{ bytes: number }> {
    const guard = new VerifyingTransform(options);
    const resumable = this.options.resumable ?? true;
    const file = this.file(this.data, key);
    // A resumable upload given up on must stop: the library would otherwise go on waiting for its
    // session and then send the body, storing an object after put has answered storage_unavailable.
    // Its session and status requests take this signal (its data request aborts on its own error).
    const abandon = new AbortController();
    if (resumable) file.interceptors.push(withSignal(abandon.signal));
    const writer = file.createWriteStream({
      resumable,
      contentType: options.contentType,
      metadata: { contentType: options.contentType },
      validation: 'crc32c',
      ...(onlyIfAbsent ? { preconditionOpts: { ifGenerationMatch: 0 } } : {}),
    });
    // The library bounds a single-request upload by its `timeout`, but sets none on a resumable
    // upload's requests: those the adapter watches itself.
    const unwatch = resumable ? watchForStall(guard, writer, abandon, this.options.requestTimeoutMs ?? 30_000) : () => undefined;
    try {
      await pipeline(body, guard, writer);
      return { bytes: guard.bytes };
    } catch (error) {
      // The caller's own stream failing (client gone, upstream size limit) is the caller's
      // error to interpret, not a storage outage.
      if (body.errored && error === body.errored) throw error;
      if (onlyIfAbsent && isGcsPreconditionFailed(error)) throw new ObjectExistsError(key);
      throw toDomainError(error, 'put');
    } finally {
      unwatch();
    }
  }

  async get(key: string, range?: ByteRange): Promise<StoredObjectStream> {
    if (range) validateRange(range);
    // Metadata first: the read stream only starts its request once consumed, and a 404 must
    // surface here, not midway through an HTTP response. Pinning the generation keeps the
    // size and type consistent with the bytes.
    const info = await this.metadata(key);
    if (!info) throw toDomainError({ code: 404 }, 'get');
    let start = 0;
    let end = info.bytes - 1;
    if (range) {
      if (range.start >= info.bytes && info.bytes > 0) {
        throw new DomainError('invalid_request', 'requested range is not satisfiable', { provider: 'gcs', operation: 'get' });
      }
      start = range.start;
      end = Math.min(range.end ?? info.bytes - 1, info.bytes - 1);
    }
    const stream = this.file(this.data, key, info.generation).createReadStream({
      ...(range ? { start, end } : {}),
      decompress: false,
    });
    // The library's timeout does not cover a body that stops midway with its connection open:
    // it would hold the reader (a proxied download) until the connection closes.
    const body = guardAgainstStall(stream, this.options.requestTimeoutMs ?? 30_000, () =>
      new DomainError('storage_unavailable', 'object storage stopped sending', { provider: 'gcs', operation: 'get' }),
    );
    return { body, bytes: Math.max(0, end - start + 1), contentType: info.contentType };
  }

  async head(key: string): Promise<StoredObjectInfo | null> {
    const info = await this.metadata(key);
    return info ? { bytes: info.bytes, contentType: info.contentType } : null;
  }

  private async metadata(key: string): Promise<(StoredObjectInfo & { generation?: string }) | null> {
    try {
      const [meta] = await this.file(this.data, key).getMetadata();
      return {
        bytes: Number(meta.size ?? 0),
        contentType: meta.contentType ?? null,
        generation: meta.generation === undefined ? undefined : String(meta.generation),
      };
    } catch (error) {
      if (isGcsMissing(error)) return null;
      throw toDomainError(error, 'head');
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.file(this.data, key).delete({ ignoreNotFound: true });
    } catch (error) {
      if (isGcsMissing(error)) return;
      throw toDomainError(error, 'delete');
    }
  }

  async signedReadUrl(key: string, options: SignedReadOptions): Promise<SignedUrl> {
    const seconds = signSeconds(options.expiresInSeconds);
    // A v4 URL states its expiry as X-Goog-Date (whole seconds) plus X-Goog-Expires: signing at a
    // whole second makes expiresAt exactly that, not up to a second after it.
    const accessibleAt = new Date(Math.floor(Date.now() / 1000) * 1000);
    const expiresAt = new Date(accessibleAt.getTime() + seconds * 1000);
    try {
      const [url] = await this.file(this.readSigning, key).getSignedUrl({
        version: 'v4',
        action: 'read',
        accessibleAt,
        expires: expiresAt,
        ...(options.contentType ? { responseType: options.contentType } : {}),
        ...(options.contentDisposition ? { responseDisposition: options.contentDisposition } : {}),
      });
      return { url, expiresAt };
    } catch (error) {
      throw toDomainError(error, 'sign-read');
    }
  }

  /**
   * PUT: content type and `x-goog-content-length-range` (exact size when declared) are signed,
   * so GCS refuses anything else; the CMEK header is signed too. GCS has no SHA-256 checksum
   * header, so a declared checksum is verified after upload by the caller. POST: a V4 policy
   * with the key, type and content-length-range as conditions.
   */
  async signedUploadUrl(key: string, options: SignedUploadOptions & { method: 'PUT' | 'POST' }): Promise<SignedUpload> {
    const seconds = signSeconds(options.expiresInSeconds);
    if (!Number.isSafeInteger(options.maxBytes) || options.maxBytes < 1) {
      throw new DomainError('invalid_request', 'maxBytes must be a positive integer');
    }
    if (options.contentLength !== undefined) {
      if (!Number.isSafeInteger(options.contentLength) || options.contentLength < 1) {
        throw new DomainError('invalid_request', 'contentLength must be a positive integer');
      }
      if (options.contentLength > options.maxBytes) {
        throw new DomainError('payload_too_large', 'declared size exceeds the upload limit', { max_bytes: options.maxBytes });
      }
    }
    const min = options.contentLength ?? 1;
    const max = options.contentLength ?? options.maxBytes;
    // Signed at a whole second, as read URLs are: a PUT states X-Goog-Date plus X-Goog-Expires
    // and a POST policy its expiration, both in whole seconds, so both end exactly at expiresAt;
    // a URL lives up to 1 s less than the TTL, never longer than reported.
    const accessibleAt = new Date(Math.floor(Date.now() / 1000) * 1000);
    const expiresAt = new Date(accessibleAt.getTime() + seconds * 1000);
    const file = this.file(this.uploadSigning, key);
    try {
      if (options.method === 'POST') {
        const fields: Record<string, string> = { 'Content-Type': options.contentType };
        if (this.options.kmsKeyName) fields['x-goog-encryption-kms-key-name'] = this.options.kmsKeyName;
        const [policy] = await file.generateSignedPostPolicyV4({
          expires: expiresAt,
          fields,
          conditions: [['content-length-range', min, max]],
        });
        // With a custom endpoint the library answers the bare endpoint; the XML API's form
        // upload target is the bucket path.
        const url = this.options.apiEndpoint ? `${this.options.apiEndpoint.replace(/\/$/, '')}/${this.options.bucket}` : policy.url;
        return { method: 'POST', url, headers: {}, fields: policy.fields as Record<string, string>, expiresAt };
      }
      const headers: Record<string, string> = {
        'content-type': options.contentType,
        'x-goog-content-length-range': `${min},${max}`,
      };
      if (this.options.kmsKeyName) headers['x-goog-encryption-kms-key-name'] = this.options.kmsKeyName;
      const extensionHeaders = Object.fromEntries(Object.entries(headers).filter(([name]) => name !== 'content-type'));
      const [url] = await file.getSignedUrl({
        version: 'v4',
        action: 'write',
        accessibleAt,
        expires: expiresAt,
        contentType: options.contentType,
        extensionHeaders,
      });
      return { method: 'PUT', url, headers, expiresAt };
    } catch (error) {
      throw toDomainError(error, 'sign-upload');
    }
  }

  async ping(): Promise<void> {
    try {
      await this.data
        .bucket(this.options.bucket)
        .file(this.options.pingKey ?? '.jan-media-ping')
        .getMetadata();
    } catch (error) {
      if (isGcsMissing(error)) return;
      const mapped = toDomainError(error, 'ping');
      throw new DomainError('storage_unavailable', 'object storage is unavailable', mapped.details, { cause: error });
    }
  }
}

/**
 * Fails a resumable upload's `writer` with storage_unavailable when GCS goes silent for `ms`
 * while the upload owes it an answer: bytes handed over and not taken, or the whole body sent
 * and no response. Without it a bucket that takes the session (or data) request and never
 * answers holds the write for as long as the connection stays open. Progress is a chunk taken
 * from the body or a `uri`/`progress` event of the upload; time spent waiting for the caller's
 * body does not count. Aborts `abandon` first, so the library does not carry on with the upload.
 * Returns the function that stops watching.
 */
function watchForStall(guard: VerifyingTransform, writer: Writable, abandon: AbortController, ms: number): () => void {
  let timer: NodeJS.Timeout | undefined;
  const waitingForBody = () => !guard.writableEnded && guard.writableLength === 0 && guard.readableLength === 0;
  const arm = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      if (waitingForBody()) return arm();
      abandon.abort();
      writer.destroy(new DomainError('storage_unavailable', 'object storage stopped answering', { provider: 'gcs', operation: 'put' }));
    }, ms);
  };
  guard.onProgress = arm;
  writer.on('uri', arm).on('progress', arm);
  arm();
  return () => {
    if (timer) clearTimeout(timer);
    guard.onProgress = undefined;
    writer.off('uri', arm).off('progress', arm);
  };
}

type RequestInterceptor = File['interceptors'][number];

/** An interceptor that adds `signal` to the requests the library makes for one file. */
function withSignal(signal: AbortSignal): RequestInterceptor {
  // Typed as taking request options and giving back decorated ones; the resumable upload spreads
  // what comes back into each request it makes, and gaxios honours `signal`.
  return { request: (request) => ({ ...request, signal }) as unknown as ReturnType<RequestInterceptor['request']> };
}

/** Counts and hashes the body; fails before the end-of-stream when it breaks the declaration. */
class VerifyingTransform extends Transform {
  bytes = 0;
  /** Called for each chunk taken from the body (the upload is taking bytes). */
  onProgress: (() => void) | undefined;
  private readonly hash = createHash('sha256');

  constructor(private readonly declared: PutOptions) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.onProgress?.();
    this.bytes += chunk.length;
    if (this.declared.contentLength !== undefined && this.bytes > this.declared.contentLength) {
      callback(sizeMismatch(this.declared.contentLength, this.bytes));
      return;
    }
    this.hash.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.onProgress?.();
    if (this.declared.contentLength !== undefined && this.bytes !== this.declared.contentLength) {
      callback(sizeMismatch(this.declared.contentLength, this.bytes));
      return;
    }
    if (this.declared.sha256 && this.declared.sha256.toLowerCase() !== this.hash.digest('hex')) {
      callback(new DomainError('checksum_mismatch', 'body does not match the declared sha256'));
      return;
    }
    callback();
  }
}

function sizeMismatch(declared: number, actual: number): DomainError {
  return new DomainError('size_mismatch', 'body size does not match the declared length', { declared_bytes: declared, received_bytes: actual });
}

function validateRange({ start, end }: ByteRange): void {
  if (!Number.isSafeInteger(start) || start < 0 || (end !== undefined && (!Number.isSafeInteger(end) || end < start))) {
    throw new DomainError('invalid_request', 'invalid byte range');
  }
}

function signSeconds(seconds: number): number {
  if (!Number.isFinite(seconds) || seconds < 1 || seconds > MAX_SIGN_SECONDS) {
    throw new DomainError('invalid_request', `expiresInSeconds must be between 1 and ${MAX_SIGN_SECONDS}`);
  }
  return Math.floor(seconds);
}
