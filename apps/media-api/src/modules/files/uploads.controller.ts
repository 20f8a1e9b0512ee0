import { Controller, HttpCode, Param, Put, Query, Req } from '@nestjs/common';
import { Writes } from '../../http/in-flight-writes';
import { ApiExcludeController } from '@nestjs/swagger';
import { createHash } from 'node:crypto';
import { pipeline, Transform, type Readable } from 'node:stream';
import { DirectUpload, DomainError, MediaStorage, uploadTooLarge } from '@jan/domain';
import { LocalDiskMediaStorage, ObjectExistsError, type SignedQuery } from '@jan/storage-local';
import type { FastifyRequest } from 'fastify';
import { Public } from '../../auth/auth.guard';
import { RateLimitByAddress } from '../../infrastructure/rate-limit/rate-limit.guard';
import { MediaConfig } from '../../config/media-config';

/**
 * The local backend's stand-in for a presigned bucket PUT: signed, single-use (only while the
 * reservation is pending and nothing was uploaded), bounded by MEDIA_MAX_BYTES while streaming.
 * What arrives is verified by `POST /v1/media/:id/complete`, exactly as for S3 and GCS.
 */
@ApiExcludeController()
@Public()
@RateLimitByAddress()
@Controller('v1/uploads')
export class UploadsController {
  constructor(
    private readonly storage: MediaStorage,
    private readonly directUpload: DirectUpload,
    private readonly config: MediaConfig,
  ) {}

  @Put('uploads/:name')
  @Writes()
  @HttpCode(200)
  put(@Param('name') name: string, @Query() query: SignedQuery, @Req() request: FastifyRequest) {
    return this.receive(`uploads/${name}`, query, request);
  }

  /** URLs handed out before uploads had keys of their own wrote the object's key. */
  @Put('images/:name')
  @Writes()
  @HttpCode(200)
  putLegacy(@Param('name') name: string, @Query() query: SignedQuery, @Req() request: FastifyRequest) {
    return this.receive(`images/${name}`, query, request);
  }

  private async receive(key: string, query: SignedQuery, request: FastifyRequest) {
    if (!(this.storage instanceof LocalDiskMediaStorage)) throw new DomainError('media_not_found', 'media not found');
    const check = this.storage.verifyUpload(key, query);
    if (!check.ok) throw new DomainError(check.reason, check.reason === 'url_expired' ? 'upload URL has expired' : 'upload URL is invalid');
    const contentType = (request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (query.ct && contentType !== query.ct) throw new DomainError('invalid_signature', `Content-Type must be ${query.ct}, as signed`);
    const declared = Number(request.headers['content-length']);
    if (query.len && declared !== Number(query.len)) throw new DomainError('invalid_signature', `Content-Length must be ${query.len}, as signed`);
    if (declared > this.config.maxBytes) throw uploadTooLarge(this.config.maxBytes);
    const contentMd5 = declaredMd5(request.headers['content-md5']);

    const reservation = await this.directUpload.reservationFor(key);
    if (!reservation) throw noReservation();
    if (await this.storage.head(key)) throw alreadyUsed();

    // pipeline, not pipe: a client that goes away mid-upload fails the write, which removes its
    // partial file and closes it, instead of leaving both open for good.
    const body = contentMd5
      ? pipeline(request.body as Readable, limit(this.config.maxBytes), matchMd5(contentMd5), () => undefined)
      : pipeline(request.body as Readable, limit(this.config.maxBytes), () => undefined);
    let bytes: number;
    try {
      ({ bytes } = await this.storage.putNew(key, body, { contentType: reservation.mimeType }));
    } catch (error) {
      // Another upload on this URL finished first: its bytes stay, these are dropped.
      if (error instanceof ObjectExistsError) throw alreadyUsed();
      // The client went away mid-upload: its mistake, not a server error (nobody reads the answer).
      if (request.raw.readableAborted || ABORTED.has((error as { code?: string }).code ?? '')) {
        throw new DomainError('invalid_request', 'the upload ended before its last byte');
      }
      throw error;
    }
    // The reservation may have closed while the bytes arrived (discarded, expired, deleted): no
    // row will ever point at them, so they go again.
    if (!(await this.directUpload.keepsUpload(key))) {
      await this.storage.delete(key);
      throw noReservation();
    }
    return { id: reservation.id, bytes };
  }
}

const ABORTED = new Set(['ERR_STREAM_PREMATURE_CLOSE', 'ECONNRESET', 'ECONNABORTED']);
const noReservation = () => new DomainError('media_not_found', 'no open upload reservation for this URL');
const alreadyUsed = () => new DomainError('invalid_signature', 'upload URL was already used');

/**
 * The `Content-MD5` a client sent (RFC 1864: base64 of the body's MD5), checked as S3 and GCS check
 * it on their PUTs, so one client works against every backend. None sent: nothing to check.
 */
function declaredMd5(header: string | string[] | undefined): Buffer | null {
  if (header === undefined) return null;
  const value = Array.isArray(header) ? header.join(',') : header.trim();
  const digest = /^[A-Za-z0-9+/]{22}==$/.test(value) ? Buffer.from(value, 'base64') : null;
  if (digest?.length !== 16) throw new DomainError('invalid_request', 'Content-MD5 must be the base64 of a 16-byte MD5 digest');
  return digest;
}

/** Passes the body through and fails it at its end when its MD5 is not `expected`. */
function matchMd5(expected: Buffer): Transform {
  const hash = createHash('md5');
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
    flush(callback) {
      if (hash.digest().equals(expected)) callback();
      else callback(new DomainError('checksum_mismatch', 'body does not match its Content-MD5'));
    },
  });
}

function limit(maxBytes: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (seen > maxBytes) callback(uploadTooLarge(maxBytes));
      else callback(null, chunk);
    },
  });
}
