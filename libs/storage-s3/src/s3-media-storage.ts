import { createHash } from 'node:crypto';
import { pipeline, Transform, type Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  type CompletedPart,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
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
import { isS3ObjectExists, isS3Missing, s3ErrorName, toDomainError } from './s3-errors';
import { signPostPolicy } from './s3-post-policy';

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Which of the adapter's clients a hook is looking at. */
export type S3ClientRole = 'write' | 'read' | 'sign-upload' | 'sign-read';

export interface S3MediaStorageOptions {
  bucket: string;
  region: string;
  /** Custom endpoint (S3-compatible server, VPC endpoint). Default: AWS's regional endpoint. */
  endpoint?: string;
  /** Path-style addressing (`endpoint/bucket/key`), needed by most S3-compatible servers. */
  forcePathStyle?: boolean;
  /**
   * KMS key for SSE-KMS. Objects are always written with `aws:kms`; without a key id S3 uses
   * the bucket's default KMS key (or `aws/s3`).
   */
  kmsKeyId?: string;
  /** Shared credentials; omitted means the SDK's default chain (IRSA, instance profile…). */
  credentials?: S3Credentials;
  /** Credentials for writes and upload signatures (PutObject, multipart, DeleteObject). */
  uploadCredentials?: S3Credentials;
  /** Credentials for reads and read signatures (GetObject/HeadObject). */
  serveCredentials?: S3Credentials;
  /**
   * Origin clients outside the cluster reach S3 through. Presigned URLs are signed for this
   * endpoint (SigV4 signs the Host, so rewriting a URL after signing would break it).
   */
  publicEndpoint?: string;
  /** Hard cap on presigned uploads, applied on top of each request's `maxBytes`. */
  maxUploadBytes?: number;
  /** Multipart part size; bodies up to one part go in a single PutObject. Min 5 MiB (S3's rule). */
  partSizeBytes?: number;
  /**
   * Without s3:ListBucket, S3 answers 403 `AccessDenied` (not 404) for absent keys. Set this when
   * the serve role lacks ListBucket so `head` returns null and `get` throws `media_not_found`
   * instead of `storage_unavailable`. Only `AccessDenied` (and a HEAD's bare 403) reads as absent:
   * bad credentials (`InvalidAccessKeyId`, `SignatureDoesNotMatch`) stay `storage_unavailable`.
   * A real permission error on a key (a missing kms:Decrypt, say) still reads as "absent": use
   * `pingKey` so /readyz catches it. `delete` never takes a 403 for "gone".
   */
  accessDeniedIsNotFound?: boolean;
  /**
   * A key probed by `ping()` with a one-byte GetObject (it need not exist). Without it `ping()`
   * sends HeadBucket, which IAM authorizes with s3:ListBucket.
   */
  pingKey?: string;
  /** Per-attempt bound, ms, on waiting for S3's answer (request sent, response headers received). */
  requestTimeoutMs?: number;
  maxAttempts?: number;
  /** Called once per SDK client the adapter creates: add middleware for metrics, tracing, tests. */
  configureClient?: (client: S3Client, role: S3ClientRole) => void;
}

const MIB = 1024 * 1024;
const MAX_PRESIGN_SECONDS = 7 * 24 * 3600;

/**
 * MediaStorage on S3 (or an S3-compatible server): private objects, SSE-KMS on every write,
 * SHA-256 checksums on every write, no ACLs and no List* calls. Reads and writes use separate
 * credentials so the serving path can hold a read-only role.
 */
export class S3MediaStorage extends MediaStorage {
  readonly provider: StorageProvider = 's3';
  private readonly writer: S3Client;
  private readonly reader: S3Client;
  private readonly uploadSigner: S3Client;
  private readonly readSigner: S3Client;
  private readonly partSize: number;
  private readonly accessDeniedIsNotFound: boolean;

  constructor(private readonly options: S3MediaStorageOptions) {
    super();
    if (!options.bucket) throw new Error('S3MediaStorage: bucket is required');
    if (!options.region) throw new Error('S3MediaStorage: region is required');
    this.partSize = options.partSizeBytes ?? 8 * MIB;
    if (this.partSize < 5 * MIB) throw new Error('S3MediaStorage: partSizeBytes must be at least 5 MiB');
    this.accessDeniedIsNotFound = options.accessDeniedIsNotFound ?? false;
    const upload = options.uploadCredentials ?? options.credentials;
    const serve = options.serveCredentials ?? options.credentials;
    this.writer = this.client('write', upload, options.endpoint);
    this.reader = this.client('read', serve, options.endpoint);
    const signingEndpoint = options.publicEndpoint ?? options.endpoint;
    this.uploadSigner = options.publicEndpoint ? this.client('sign-upload', upload, signingEndpoint) : this.writer;
    this.readSigner = options.publicEndpoint ? this.client('sign-read', serve, signingEndpoint) : this.reader;
  }

  private client(role: S3ClientRole, credentials: S3Credentials | undefined, endpoint: string | undefined): S3Client {
    const config: S3ClientConfig = {
      region: this.options.region,
      endpoint,
      forcePathStyle: this.options.forcePathStyle ?? false,
      credentials,
      // Flexible checksums by default turn stream bodies into aws-chunked uploads with trailers;
      // S3-compatible servers store that framing as data. We send our own SHA-256 instead.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      maxAttempts: this.options.maxAttempts ?? 3,
      // Without throwOnRequestTimeout the SDK only logs a warning when requestTimeout passes, and
      // a bucket that takes the request but never answers holds it (and the caller) forever.
      requestHandler: { requestTimeout: this.options.requestTimeoutMs ?? 30_000, throwOnRequestTimeout: true, connectionTimeout: 5_000 },
    };
    const client = new S3Client(config);
    this.options.configureClient?.(client, role);
    return client;
  }

  private get encryption() {
    return {
      ServerSideEncryption: 'aws:kms' as const,
      ...(this.options.kmsKeyId ? { SSEKMSKeyId: this.options.kmsKeyId } : {}),
    };
  }

  /**
   * Buffers one part at a time: a body that fits in one part goes up as a single PutObject,
   * anything larger as a multipart upload with a SHA-256 per part. Size and declared checksum
   * are checked before the object is committed, and a failed multipart upload is aborted, so a
   * failure leaves nothing at `key` (and no billable orphan parts).
   */
  async put(key: string, body: Readable, options: PutOptions): Promise<{ bytes: number }> {
    return this.write(key, body, options, false);
  }

  /**
   * `put` with `If-None-Match: *` on the request that commits the object (PutObject, or
   * CompleteMultipartUpload): S3 answers 412 PreconditionFailed when an object is there, and
   * keeps nothing of this write; the multipart upload is then aborted like any failed one.
   */
  async putNew(key: string, body: Readable, options: PutOptions): Promise<{ bytes: number }> {
    return this.write(key, body, options, true);
  }

  private async write(key: string, body: Readable, options: PutOptions, onlyIfAbsent: boolean): Promise<{ bytes: number }> {
    const bucket = this.options.bucket;
    const condition = onlyIfAbsent ? { IfNoneMatch: '*' } : {};
    const whole = createHash('sha256');
    let total = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let uploadId: string | undefined;
    const parts: CompletedPart[] = [];

    const uploadPart = async (data: Buffer) => {
      uploadId ??= (
        await this.writer.send(
          new CreateMultipartUploadCommand({
            Bucket: bucket,
            Key: key,
            ContentType: options.contentType,
            ChecksumAlgorithm: 'SHA256',
            ...this.encryption,
          }),
        )
      ).UploadId;
      if (!uploadId) throw new Error('CreateMultipartUpload returned no UploadId');
      const PartNumber = parts.length + 1;
      const ChecksumSHA256 = createHash('sha256').update(data).digest('base64');
      const out = await this.writer.send(
        new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber, Body: data, ContentLength: data.length, ChecksumSHA256 }),
      );
      parts.push({ PartNumber, ETag: out.ETag, ChecksumSHA256: out.ChecksumSHA256 ?? ChecksumSHA256 });
    };

    try {
      for await (const chunk of body) {
        const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
        whole.update(buf);
        total += buf.length;
        if (options.contentLength !== undefined && total > options.contentLength) throw sizeMismatch(options.contentLength, total);
        pending.push(buf);
        pendingBytes += buf.length;
        while (pendingBytes >= this.partSize) {
          const all = Buffer.concat(pending, pendingBytes);
          await uploadPart(all.subarray(0, this.partSize));
          const rest = all.subarray(this.partSize);
          pending = rest.length ? [rest] : [];
          pendingBytes = rest.length;
        }
      }
      if (options.contentLength !== undefined && total !== options.contentLength) throw sizeMismatch(options.contentLength, total);
      const digest = whole.digest();
      if (options.sha256 && options.sha256.toLowerCase() !== digest.toString('hex')) {
        throw new DomainError('checksum_mismatch', 'body does not match the declared sha256');
      }
      const tail = Buffer.concat(pending, pendingBytes);
      if (uploadId === undefined) {
        await this.writer.send(
          new PutObjectCommand({
            Bucket: bucket,
            Key: key,
            Body: tail,
            ContentLength: tail.length,
            ContentType: options.contentType,
            ChecksumSHA256: digest.toString('base64'),
            ...condition,
            ...this.encryption,
          }),
        );
      } else {
        if (tail.length > 0) await uploadPart(tail);
        await this.writer.send(
          new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts }, ...condition }),
        );
      }
      return { bytes: total };
    } catch (error) {
      if (uploadId !== undefined) {
        // Best effort: if the abort fails too, the bucket's lifecycle rule
        // (AbortIncompleteMultipartUpload, see README) is the backstop.
        await this.writer.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId })).catch(() => undefined);
      }
      // The caller's own stream failing (client gone, upstream size limit) is the caller's
      // error to interpret, not a storage outage.
      if (body.errored && error === body.errored) throw error;
      if (!body.destroyed) body.destroy();
      if (onlyIfAbsent && isS3ObjectExists(error)) throw new ObjectExistsError(key);
      throw toDomainError(error, 'put');
    }
  }

  async get(key: string, range?: ByteRange): Promise<StoredObjectStream> {
    const Range = range ? rangeHeader(range) : undefined;
    try {
      const out = await this.reader.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: key, Range }));
      if (!out.Body) throw new Error('GetObject returned no body');
      // The SDK's timeouts end at the response headers: a body that stops midway would hold the
      // reader (a proxied download) for as long as the connection stays open.
      const body = guardAgainstStall(out.Body as Readable, this.options.requestTimeoutMs ?? 30_000, () =>
        new DomainError('storage_unavailable', 'object storage stopped sending', { provider: 's3', operation: 'get' }),
      );
      const bytes = out.ContentLength ?? 0;
      const wanted = range ? servedBeyondRange(range, out.ContentRange) : undefined;
      if (wanted !== undefined) return { body: pipeline(body, limitBytes(wanted), () => undefined), bytes: wanted, contentType: out.ContentType ?? null };
      return { body, bytes, contentType: out.ContentType ?? null };
    } catch (error) {
      throw toDomainError(error, 'get', this.accessDeniedIsNotFound);
    }
  }

  async head(key: string): Promise<StoredObjectInfo | null> {
    try {
      const out = await this.reader.send(new HeadObjectCommand({ Bucket: this.options.bucket, Key: key }));
      return { bytes: out.ContentLength ?? 0, contentType: out.ContentType ?? null };
    } catch (error) {
      if (isS3Missing(error, this.accessDeniedIsNotFound)) return null;
      throw toDomainError(error, 'head');
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.writer.send(new DeleteObjectCommand({ Bucket: this.options.bucket, Key: key }));
    } catch (error) {
      // DeleteObject answers 204 for an absent key, so a 403 here is always a refusal: taking it
      // for "already gone" would drop the row and leave the bytes with nothing to reap them.
      if (isS3Missing(error, false)) return;
      throw toDomainError(error, 'delete');
    }
  }

  async signedReadUrl(key: string, options: SignedReadOptions): Promise<SignedUrl> {
    const expiresIn = presignSeconds(options.expiresInSeconds);
    const command = new GetObjectCommand({
      Bucket: this.options.bucket,
      Key: key,
      ResponseContentType: options.contentType,
      ResponseContentDisposition: options.contentDisposition,
    });
    // The URL states its expiry as X-Amz-Date (whole seconds) plus X-Amz-Expires: signing at a
    // whole second makes expiresAt exactly that, not up to a second after it.
    const signingDate = new Date(Math.floor(Date.now() / 1000) * 1000);
    const expiresAt = new Date(signingDate.getTime() + expiresIn * 1000);
    try {
      return { url: await getSignedUrl(this.readSigner, command, { expiresIn, signingDate }), expiresAt };
    } catch (error) {
      throw toDomainError(error, 'sign-read');
    }
  }

  async signedUploadUrl(key: string, options: SignedUploadOptions & { method: 'PUT' | 'POST' }): Promise<SignedUpload> {
    const expiresIn = presignSeconds(options.expiresInSeconds);
    const maxBytes = Math.min(options.maxBytes, this.options.maxUploadBytes ?? Number.MAX_SAFE_INTEGER);
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
      throw new DomainError('invalid_request', 'maxBytes must be a positive integer');
    }
    if (options.contentLength !== undefined) {
      if (!Number.isSafeInteger(options.contentLength) || options.contentLength < 1) {
        throw new DomainError('invalid_request', 'contentLength must be a positive integer');
      }
      if (options.contentLength > maxBytes) {
        throw new DomainError('payload_too_large', 'declared size exceeds the upload limit', { max_bytes: maxBytes });
      }
    }
    // Signed at a whole second, as read URLs are: a PUT states X-Amz-Date (whole seconds) plus
    // X-Amz-Expires, a POST policy its own expiration (it takes no signing date). Both then end
    // exactly at expiresAt; a URL lives up to 1 s less than the TTL, never longer than reported.
    const signingDate = new Date(Math.floor(Date.now() / 1000) * 1000);
    const expiresAt = new Date(signingDate.getTime() + expiresIn * 1000);
    try {
      return options.method === 'POST'
        ? await this.signedPost(key, options, maxBytes, signingDate, expiresAt)
        : await this.signedPut(key, options, expiresIn, signingDate, expiresAt);
    } catch (error) {
      throw toDomainError(error, 'sign-upload');
    }
  }

  /**
   * Content-Type and Content-Length (when declared) are signed headers, so S3 refuses a PUT that
   * differs. Encryption and checksum headers are kept as headers (not hoisted into the query):
   * S3 only honours them as headers, and signing them makes them mandatory.
   */
  private async signedPut(key: string, options: SignedUploadOptions, expiresIn: number, signingDate: Date, expiresAt: Date): Promise<SignedUpload> {
    const headers: Record<string, string> = { 'content-type': options.contentType };
    if (options.contentLength !== undefined) headers['content-length'] = String(options.contentLength);
    headers['x-amz-server-side-encryption'] = 'aws:kms';
    if (this.options.kmsKeyId) headers['x-amz-server-side-encryption-aws-kms-key-id'] = this.options.kmsKeyId;
    if (options.checksumSha256Base64) headers['x-amz-checksum-sha256'] = options.checksumSha256Base64;
    const command = new PutObjectCommand({
      Bucket: this.options.bucket,
      Key: key,
      ContentType: options.contentType,
      ContentLength: options.contentLength,
      ChecksumSHA256: options.checksumSha256Base64,
      ...this.encryption,
    });
    const url = await getSignedUrl(this.uploadSigner, command, {
      expiresIn,
      signingDate,
      signableHeaders: new Set(['content-type', 'content-length']),
      unhoistableHeaders: new Set(Object.keys(headers).filter((h) => h.startsWith('x-amz-'))),
    });
    return { method: 'PUT', url, headers, expiresAt };
  }

  /** Browser form upload: the policy pins the key, the type and a content-length-range. */
  private async signedPost(
    key: string,
    options: SignedUploadOptions,
    maxBytes: number,
    signingDate: Date,
    expiresAt: Date,
  ): Promise<SignedUpload> {
    const credentials = await this.uploadSigner.config.credentials();
    const region = await this.uploadSigner.config.region();
    const fields: Record<string, string> = {
      'Content-Type': options.contentType,
      'x-amz-server-side-encryption': 'aws:kms',
    };
    if (this.options.kmsKeyId) fields['x-amz-server-side-encryption-aws-kms-key-id'] = this.options.kmsKeyId;
    if (options.checksumSha256Base64) {
      fields['x-amz-checksum-algorithm'] = 'SHA256';
      fields['x-amz-checksum-sha256'] = options.checksumSha256Base64;
    }
    const min = options.contentLength ?? 1;
    const max = options.contentLength ?? maxBytes;
    const signed = signPostPolicy({
      bucket: this.options.bucket,
      key,
      region,
      credentials,
      now: signingDate,
      expiresAt,
      fields,
      conditions: [['content-length-range', min, max]],
    });
    return { method: 'POST', url: await this.bucketUrl(), headers: {}, fields: signed, expiresAt };
  }

  /** The bucket's URL as the signer resolves it (path or virtual-host style, public endpoint). */
  private async bucketUrl(): Promise<string> {
    const probe = new URL(await getSignedUrl(this.uploadSigner, new HeadBucketCommand({ Bucket: this.options.bucket }), { expiresIn: 60 }));
    return `${probe.origin}${probe.pathname}`;
  }

  /**
   * With `pingKey`: a one-byte GET of that key (GET, not HEAD, because only a GET error carries
   * S3's error code). Present, absent (404) and — when `accessDeniedIsNotFound` — `AccessDenied`
   * all prove S3 is reachable and the credentials are valid; `InvalidAccessKeyId`,
   * `SignatureDoesNotMatch`, 5xx and no answer do not. Without `pingKey`: HeadBucket.
   */
  async ping(): Promise<void> {
    try {
      if (this.options.pingKey) {
        const out = await this.reader.send(new GetObjectCommand({ Bucket: this.options.bucket, Key: this.options.pingKey, Range: 'bytes=0-0' }));
        (out.Body as Readable | undefined)?.destroy();
      } else {
        await this.reader.send(new HeadBucketCommand({ Bucket: this.options.bucket }));
      }
    } catch (error) {
      if (this.options.pingKey) {
        const name = s3ErrorName(error);
        if (name === 'NoSuchKey' || (this.accessDeniedIsNotFound && name === 'AccessDenied')) return;
      }
      const mapped = toDomainError(error, 'ping');
      throw mapped.code === 'storage_unavailable'
        ? mapped
        : new DomainError('storage_unavailable', 'object storage is unavailable', mapped.details, { cause: error });
    }
  }

  /** Closes the SDK clients' sockets. */
  destroy(): void {
    for (const client of new Set([this.writer, this.reader, this.uploadSigner, this.readSigner])) client.destroy();
  }
}

function sizeMismatch(declared: number, actual: number): DomainError {
  return new DomainError('size_mismatch', 'body size does not match the declared length', { declared_bytes: declared, received_bytes: actual });
}

function rangeHeader(range: ByteRange): string {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || start < 0 || (end !== undefined && (!Number.isSafeInteger(end) || end < start))) {
    throw new DomainError('invalid_request', 'invalid byte range');
  }
  return `bytes=${start}-${end ?? ''}`;
}

/**
 * Some S3-compatible servers answer more than was asked (s3rver 3.7 treats `bytes=0-0` as
 * `bytes=0-`). Returns the length to cut the body to when the answer overshoots the range.
 */
function servedBeyondRange(range: ByteRange, contentRange: string | undefined): number | undefined {
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(contentRange ?? '');
  if (!match || range.end === undefined) return undefined;
  const [start, end] = [Number(match[1]), Number(match[2])];
  if (start !== range.start) throw new Error(`server answered range ${contentRange} for bytes=${range.start}-${range.end}`);
  return end > range.end ? range.end - range.start + 1 : undefined;
}

function limitBytes(limit: number): Transform {
  let left = limit;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (left <= 0) return callback();
      const piece = chunk.length > left ? chunk.subarray(0, left) : chunk;
      left -= piece.length;
      callback(null, piece);
    },
  });
}

function presignSeconds(seconds: number): number {
  if (!Number.isFinite(seconds) || seconds < 1 || seconds > MAX_PRESIGN_SECONDS) {
    throw new DomainError('invalid_request', `expiresInSeconds must be between 1 and ${MAX_PRESIGN_SECONDS}`);
  }
  return Math.floor(seconds);
}
