import { Controller, Get, Head, Param, Query, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { Clock, DomainError, MediaStorage } from '@jan/domain';
import { LocalDiskMediaStorage, type SignedQuery } from '@jan/storage-local';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Public } from '../../auth/auth.guard';
import { notModified, requestedRange, sendRangeNotSatisfiable, servedLength } from '../../http/byte-ranges';
import { RateLimitByAddress } from '../../infrastructure/rate-limit/rate-limit.guard';

const MAX_CACHE_SECONDS = 300;

/**
 * Serves the local backend's signed URLs. No credentials: the HMAC signature over key, expiry,
 * content type and disposition is the credential. Tampered → 403 invalid_signature; expired → 403.
 */
@ApiExcludeController()
@Public()
@RateLimitByAddress()
@Controller('v1/files')
export class FilesController {
  constructor(
    private readonly storage: MediaStorage,
    private readonly clock: Clock,
  ) {}

  /** HEAD as GET, without opening the file (see MediaController.head: declared before GET for that). */
  @Head('images/:name')
  head(@Param('name') name: string, @Query() query: SignedQuery, @Req() request: FastifyRequest, @Res() reply: FastifyReply) {
    return this.read(name, query, request, reply);
  }

  @Get('images/:name')
  async read(@Param('name') name: string, @Query() query: SignedQuery, @Req() request: FastifyRequest, @Res() reply: FastifyReply) {
    const storage = this.localStorage();
    const key = `images/${name}`;
    const check = storage.verifyRead(key, query);
    if (!check.ok) throw new DomainError(check.reason, check.reason === 'url_expired' ? 'signed URL has expired' : 'signed URL is invalid');
    // ETags, conditional requests and ranges as on S3's and GCS's signed URLs, so a client
    // behaves the same on every backend. Only after the signature check: a 304 tells that the bytes exist.
    const stored = await storage.validator(key);
    if (!stored) throw new DomainError('media_not_found', 'media not found');
    const { bytes: size, etag } = stored;
    const cacheControl = `private, max-age=${this.cacheSeconds(query)}`;
    if (notModified(request, etag)) return reply.status(304).header('etag', etag).header('cache-control', cacheControl).send();
    const range = requestedRange(request, size, etag);
    if (range === 'unsatisfiable') return sendRangeNotSatisfiable(request, reply, size);
    const object = request.method === 'HEAD' ? null : await storage.get(key, range ?? undefined);
    if (range) reply.status(206).header('content-range', `bytes ${range.start}-${range.end}/${size}`);
    reply
      .header('content-type', query.ct ?? 'application/octet-stream')
      .header('content-length', String(object?.bytes ?? servedLength(range, size)))
      .header('etag', etag)
      .header('accept-ranges', 'bytes')
      .header('content-disposition', query.cd ?? 'inline')
      .header('cache-control', cacheControl)
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', "default-src 'none'");
    return object ? reply.send(object.body) : reply.send();
  }

  /**
   * Up to five minutes, never past the URL's own expiry: a browser must not keep showing the bytes
   * of a link that no longer works (a reissue with a short TTL, say).
   */
  private cacheSeconds(query: SignedQuery): number {
    const left = Math.floor(Number(query.expires) - this.clock.now().getTime() / 1000);
    return Math.max(0, Math.min(MAX_CACHE_SECONDS, left));
  }

  private localStorage(): LocalDiskMediaStorage {
    if (!(this.storage instanceof LocalDiskMediaStorage)) throw new DomainError('media_not_found', 'media not found');
    return this.storage;
  }
}
