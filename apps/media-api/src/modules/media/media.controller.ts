import { Body, Controller, Delete, Get, Head, HttpCode, Param, Post, Put, Query, Req, Res } from '@nestjs/common';
import { Writes } from '../../http/in-flight-writes';
import {
  ApiBody,
  ApiConsumes,
  ApiExcludeEndpoint,
  ApiExtraModels,
  ApiHeader,
  ApiNoContentResponse,
  ApiNotModifiedResponse,
  ApiOkResponse,
  ApiOperation,
  ApiPartialContentResponse,
  ApiQuery,
  ApiSecurity,
  ApiTags,
  getSchemaPath,
  type ApiQueryOptions,
  type HeadersObject,
  type SchemaObject,
} from '@nestjs/swagger';
import {
  DirectUpload,
  DomainError,
  attachment,
  IngestMedia,
  isDomainError,
  ManageMedia,
  MediaEvents,
  OpenMedia,
  PresignMedia,
  RemoteFetcher,
  ResolveMedia,
  resolveOwner,
  USER_ID_PATTERN,
  type IngestResult,
  type IngestSource,
  type MediaObject,
  type Principal,
  type UploadSource,
  uploadTooLarge,
} from '@jan/domain';
import { RouteConfig } from '@nestjs/platform-fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Multipart } from '@fastify/multipart';
import type { IncomingMessage } from 'node:http';
import { CurrentPrincipal } from '../../auth/auth.guard';
import { Idempotent } from '../../http/idempotency.interceptor';
import type { RawJsonRouteConfig } from '../../http/raw-json-body';
import { MediaConfig } from '../../config/media-config';
import { parseDataUrl } from './data-url';
import { parseIngestJson, takeDecodedDataUrl } from './data-url-body';
import { IngestMediaDto, parseIngestBody } from './dto/ingest-media.dto';
import {
  MediaMetadataDto,
  MediaResponseDto,
  MediaUrlResponseDto,
  SignedUrlResponseDto,
  toMediaResponse,
  toMetadata,
  toSignedUrlResponse,
} from './dto/media-response.dto';
import { PrepareUploadDto, PrepareUploadResponseDto } from './dto/prepare-upload.dto';
import { ResolveIdsResponseDto, ResolveMediaDto, ResolvePayloadResponseDto, readResolveBody } from './dto/resolve-media.dto';
import { parseSourceType } from './source-type';
import { RateLimitOwnerInStream, RateLimits, bucketOf } from '../../infrastructure/rate-limit/rate-limit.guard';
import { notModified, requestedRange, sendRangeNotSatisfiable, servedLength } from '../../http/byte-ranges';

/** Routes that read no body: an empty JSON body is none (see `RawJsonRouteConfig.emptyBodyIsNone`). */
const NO_BODY = { emptyBodyIsNone: true } satisfies RawJsonRouteConfig;

const BINARY: SchemaObject = { type: 'string', format: 'binary' };

const DOWNLOAD_QUERY: ApiQueryOptions = {
  name: 'download',
  required: false,
  type: String,
  description: '`1` or `true`: `Content-Disposition: attachment`; any other value, or none: inline. Given more than once: 400 `invalid_request`',
};

/**
 * `?download=` as a flag. A repeated one (`?download=1&download=1`) arrives as an array, which no
 * comparison with `'1'` matches: it would be served inline without a word, so it is refused.
 */
function wantsDownload(value: unknown): boolean {
  if (Array.isArray(value)) throw new DomainError('invalid_request', 'download must be given at most once', { parameter: 'download' });
  return value === '1' || value === 'true';
}

const SERVED_HEADERS: HeadersObject = {
  ETag: { description: 'Strong: the SHA-256 of the bytes, quoted', schema: { type: 'string' } },
  'Content-Disposition': { description: '`inline`, or `attachment` with `?download=1` (named after the uploaded filename, ending in the served type\'s extension)', schema: { type: 'string' } },
  'Accept-Ranges': { schema: { type: 'string', enum: ['bytes'] } },
};

@ApiTags('media')
@ApiSecurity('service-key')
@ApiSecurity('bearer')
@ApiSecurity('api-key')
@ApiSecurity('admin-key')
@ApiHeader({ name: 'X-Jan-User-Id', required: false, description: 'The end user a service acts for' })
@Controller('v1/media')
export class MediaController {
  constructor(
    private readonly ingestMedia: IngestMedia,
    private readonly openMedia: OpenMedia,
    private readonly presignMedia: PresignMedia,
    private readonly resolveMedia: ResolveMedia,
    private readonly manageMedia: ManageMedia,
    private readonly directUpload: DirectUpload,
    private readonly remoteFetcher: RemoteFetcher,
    private readonly config: MediaConfig,
    private readonly events: MediaEvents,
    private readonly rateLimits: RateLimits,
  ) {}

  @Post()
  @Writes()
  @Idempotent()
  @RouteConfig({ jsonParser: parseIngestJson } satisfies RawJsonRouteConfig)
  @HttpCode(200)
  @ApiOperation({ summary: 'Ingest an image from a data URL or a remote URL' })
  @ApiBody({ type: IngestMediaDto })
  @ApiOkResponse({ type: MediaResponseDto, description: 'The stored object, or the one these bytes already were (`deduped: true`)' })
  async ingest(@CurrentPrincipal() principal: Principal, @Body() body: unknown): Promise<MediaResponseDto> {
    const dto = parseIngestBody(body);
    const type = parseSourceType(dto.source.type);
    let source: { body: UploadSource; declaredMimeType: string | undefined };
    try {
      source = type === 'data_url' ? this.dataUrlSource(dto, body) : await this.remoteSource(dto);
    } catch (error) {
      // Refused before the pipeline (a bad data URL, a blocked or failed fetch): counted and
      // audited like the pipeline's own refusals.
      if (isDomainError(error)) this.events.emit({ type: 'ingest.rejected', principal, source: type, code: error.code, owner: ownerOrNothing(principal, dto.user_id) });
      throw error;
    }
    return this.ingestFrom(principal, type, source.body, source.declaredMimeType, dto);
  }

  private dataUrlSource(dto: IngestMediaDto, rawBody: unknown) {
    if (typeof dto.source.data_url !== 'string' || !dto.source.data_url) {
      throw new DomainError('invalid_data_url', 'source.data_url is required for a data_url source');
    }
    // Most often decoded already, straight from the body's bytes (`parseIngestJson`).
    const parsed = takeDecodedDataUrl(rawBody) ?? parseDataUrl(dto.source.data_url);
    // From here on only the decoder holds the text, and it lets go once decoded: a data URL that
    // stayed reachable from the request until the response survived young-generation GCs and
    // was promoted, which grew the old generation by tens of MB under concurrent uploads.
    forgetDataUrl(dto, rawBody);
    if (parsed.bytes > this.config.maxBytes) throw uploadTooLarge(this.config.maxBytes);
    return { body: parsed.body, declaredMimeType: parsed.declaredMimeType };
  }

  private async remoteSource(dto: IngestMediaDto) {
    if (typeof dto.source.url !== 'string' || !dto.source.url) {
      throw new DomainError('invalid_remote_url', 'source.url is required for a remote_url source');
    }
    const remote = await this.remoteFetcher.fetch(dto.source.url, { maxBytes: this.config.maxBytes });
    return { body: remote.body, declaredMimeType: remote.contentType ?? undefined };
  }

  @Post('upload')
  @Writes()
  @Idempotent()
  @RateLimitOwnerInStream()
  @HttpCode(200)
  @ApiOperation({ summary: 'Ingest an image from a multipart upload (field `file`, optional `user_id`)' })
  @ApiConsumes('multipart/form-data')
  @ApiBody({ schema: { type: 'object', properties: { file: { type: 'string', format: 'binary' }, user_id: { type: 'string', pattern: USER_ID_PATTERN, description: 'Owner, as for POST /v1/media (send it before file)' } }, required: ['file'] } })
  @ApiOkResponse({ type: MediaResponseDto, description: 'The stored object, or the one these bytes already were (`deduped: true`)' })
  async upload(
    @CurrentPrincipal() principal: Principal,
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<MediaResponseDto> {
    // A service naming no user in its headers is counted here, for the user the form names (a
    // `user_id` before the file decides the owner), before the file is read; everyone else was
    // counted by the guard.
    const countLate = principal.kind !== 'user' && principal.actingFor === null;
    let userId: string | undefined;
    const charge = (user = userId) => this.rateLimits.charge(bucketOf(principal, this.rateLimits.settings, user), reply);
    if (!request.isMultipart()) {
      if (countLate) await charge();
      throw new DomainError('invalid_request', 'expected multipart/form-data with a `file` field');
    }
    const bodyLimit = multipartBodyLimit(this.config.maxBytes);
    if (Number(request.headers['content-length']) > bodyLimit) {
      if (countLate) await charge();
      throw closeIfTooLarge(reply, uploadTooLarge(this.config.maxBytes));
    }
    let result: MediaResponseDto | undefined;
    let ingested: IngestResult | undefined;
    let refused = false;
    /** A `file` part sent without a filename, which busboy reads as a text field. */
    let fileAsText = false;
    let owner = '';
    // Attached before the parser starts reading (in this same tick), so it counts every byte.
    const stopMetering = meterBody(request.raw, bodyLimit, () => uploadTooLarge(this.config.maxBytes));
    const parts = request.parts()[Symbol.asyncIterator]();
    try {
      for (;;) {
        let next: IteratorResult<Multipart>;
        try {
          next = await parts.next();
        } catch (error) {
          // What follows a stored file (a second file, a body cut off after it) changes nothing.
          closeIfTooLarge(reply, error);
          if (result) return result;
          // Refused before the file part (too large, malformed): counted all the same, as a
          // body with no file part is.
          if (countLate) await charge();
          throw isDomainError(error) ? error : malformedMultipart(error);
        }
        if (next.done) break;
        const part = next.value;
        if (part.type === 'field') {
          if (part.fieldname === 'file') fileAsText = true;
          if (part.fieldname !== 'user_id' || typeof part.value !== 'string') continue;
          if (!ingested) userId = part.value;
          else if (namesAnotherOwner(principal, part.value, owner)) {
            refused = true;
            const named = part.value;
            // Refused either way, and charged to the user it names, so a late user_id is no way
            // around that user's limit: 429 once they are out of budget, 400 otherwise.
            const chargeNamed = countLate ? () => charge(named) : undefined;
            await this.refuseLateOwner(principal, owner, ingested, chargeNamed);
          }
          continue;
        }
        if (part.fieldname !== 'file' || result) {
          part.file.resume();
          continue;
        }
        // Fields sent before the file are known here; the file is streamed straight into staging.
        if (countLate) await charge();
        let fileError: unknown;
        part.file.once('error', (error: unknown) => (fileError = error));
        try {
          // The acceptance is announced once the rest of the body cannot refuse the upload any more.
          ingested = await this.ingestMedia.execute({
            principal,
            source: 'multipart',
            body: part.file,
            declaredMimeType: part.mimetype,
            filename: part.filename,
            userId,
            deferAcceptance: true,
          });
        } catch (error) {
          // busboy's own errors about the body (a part cut off) are the client's; storage's are not.
          if (fileError !== undefined && !isDomainError(error)) throw malformedMultipart(fileError);
          throw error;
        }
        owner = resolveOwner(principal, userId);
        result = await this.respond(ingested.media, ingested.deduped);
        if (part.file.truncated) throw uploadTooLarge(this.config.maxBytes);
      }
    } catch (error) {
      throw closeIfTooLarge(reply, error);
    } finally {
      stopMetering();
      if (!refused) ingested?.accept?.();
    }
    if (!result) {
      if (countLate) await charge();
      if (fileAsText) throw new DomainError('invalid_request', 'the `file` part has no filename, so it was read as a text field: send it as a file (Content-Disposition: form-data; name="file"; filename="…")');
      throw new DomainError('invalid_request', 'multipart body has no `file` field');
    }
    return result;
  }

  /**
   * A `user_id` after the file comes too late: the file was stored for the owner known before it,
   * and it names another owner. The upload is undone (unless it was a duplicate of an object that
   * already existed) and refused, rather than left with the wrong owner. Its acceptance was never
   * announced, so the trail and the metrics show one refused ingest, not an upload and a deletion.
   */
  private async refuseLateOwner(principal: Principal, owner: string, ingested: IngestResult, chargeNamed?: () => Promise<void>): Promise<never> {
    if (!ingested.deduped) {
      try {
        await this.manageMedia.discardUnannounced(ingested.media);
      } catch (error) {
        // The object stays: it was accepted after all.
        ingested.accept?.();
        throw error;
      }
    }
    this.events.emit({ type: 'ingest.rejected', principal, source: 'multipart', code: 'invalid_request', owner });
    await chargeNamed?.();
    throw new DomainError('invalid_request', 'user_id must come before file in the multipart body');
  }

  @Post('prepare-upload')
  @Writes()
  @Idempotent()
  @HttpCode(200)
  @ApiOperation({ summary: 'Reserve an id and get a signed URL to upload the bytes straight to storage; then call complete' })
  @ApiOkResponse({ type: PrepareUploadResponseDto, description: 'The reservation, where to upload the bytes, and where to complete' })
  async prepareUpload(@CurrentPrincipal() principal: Principal, @Body() dto: PrepareUploadDto): Promise<PrepareUploadResponseDto> {
    const mimeType = dto.mime_type ?? dto.content_type;
    if (!mimeType) throw new DomainError('invalid_request', 'mime_type is required');
    const { media, upload, expiresInSeconds } = await this.directUpload.prepare({
      principal,
      mimeType,
      bytes: dto.bytes,
      sha256: dto.sha256,
      method: dto.method,
      userId: dto.user_id,
      filename: dto.filename,
    });
    return {
      id: media.id,
      upload_url: upload.url,
      method: upload.method,
      headers: upload.headers,
      ...(upload.fields ? { fields: upload.fields } : {}),
      mime_type: media.mimeType,
      expires_in: expiresInSeconds,
      expires_at: upload.expiresAt.toISOString(),
      complete_url: `${this.config.publicUrl}/v1/media/${media.id}/complete`,
    };
  }

  @Post(':id/complete')
  @Writes()
  @RouteConfig(NO_BODY)
  @Idempotent()
  @HttpCode(200)
  @ApiOperation({ summary: 'Verify a direct upload (size, checksum, type, decode) and make it ready' })
  @ApiOkResponse({ type: MediaResponseDto, description: 'The verified object, now ready, or the one these bytes already were (`deduped: true`)' })
  async complete(@CurrentPrincipal() principal: Principal, @Param('id') id: string): Promise<MediaResponseDto> {
    const { media, deduped } = await this.directUpload.complete(principal, id);
    return this.respond(media, deduped);
  }

  @Post('resolve')
  @HttpCode(200)
  @RouteConfig({ rawJson: true } satisfies RawJsonRouteConfig)
  @ApiOperation({ summary: 'Replace jan_ placeholders in any JSON with short-lived URLs, or presign a list of ids' })
  @ApiBody({ type: ResolveMediaDto })
  @ApiExtraModels(ResolvePayloadResponseDto, ResolveIdsResponseDto)
  @ApiOkResponse({
    description: '`{payload}` for a payload, `{media}` for `ids`; either with `unresolved` under `keep_unresolved`',
    schema: { oneOf: [{ $ref: getSchemaPath(ResolvePayloadResponseDto) }, { $ref: getSchemaPath(ResolveIdsResponseDto) }] },
  })
  async resolve(@CurrentPrincipal() principal: Principal, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply) {
    // Chat payloads are large: the body arrives as bytes and is read by hand (readResolveBody),
    // never parsed into objects, walked by the validation pipe or serialized again.
    const { dto, payload } = readResolveBody(body);
    const options = { mode: dto.mode, keepUnresolved: dto.keep_unresolved };
    if (dto.ids !== undefined) {
      const result = await this.resolveMedia.resolveIds(principal, dto.ids, options);
      setServerTiming(reply, result.timings);
      return {
        media: result.resolved.map((r) => ({ id: r.id, presigned_url: r.url, url: r.url, expires_at: r.expiresAt?.toISOString() ?? null })),
        ...(result.unresolved.length ? { unresolved: result.unresolved } : {}),
      };
    }
    if (!payload) throw new DomainError('invalid_request', 'send either `payload` or `ids`');
    const result = await this.resolveMedia.resolveScan(principal, payload, options);
    setServerTiming(reply, result.timings);
    // `{"payload": <the payload's own bytes, placeholders swapped>[, "unresolved": [...]]}`
    const tail = result.unresolved.length ? `,"unresolved":${JSON.stringify(result.unresolved)}}` : '}';
    void reply.header('content-type', 'application/json; charset=utf-8');
    return Buffer.concat([PAYLOAD_OPEN, ...result.payload, Buffer.from(tail)]);
  }

  /**
   * HEAD answers as GET does, without opening the object. Declared before GET, so that Fastify
   * does not add its own HEAD route, which streams the whole object (from the bucket too) only to
   * throw it away, and sends `Content-Length: 0` with a 304.
   */
  @Head(':id')
  @ApiExcludeEndpoint()
  head(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @Query('download') download: unknown,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ) {
    return this.download(principal, id, download, request, reply);
  }

  @Get(':id')
  @ApiOperation({ summary: 'Stream the bytes (proxy mode) or return {url, expires_at} when MEDIA_PROXY_DOWNLOAD=false' })
  @ApiQuery(DOWNLOAD_QUERY)
  @ApiHeader({ name: 'Range', required: false, description: 'One `bytes=` range (proxy mode); anything else, a reversed range included, is ignored and the whole object sent, as it is on HEAD (ranges are for GET)' })
  @ApiHeader({ name: 'If-None-Match', required: false, description: 'ETags; a match (weak tags and `*` too) answers 304' })
  @ApiHeader({ name: 'If-Range', required: false, description: 'The ETag: Range applies only when it matches, else the whole object is sent' })
  @ApiOkResponse({
    description: 'The whole object, with its sniffed Content-Type (proxy mode); `{url, expires_at}` when MEDIA_PROXY_DOWNLOAD=false',
    headers: SERVED_HEADERS,
    content: {
      'image/*': { schema: BINARY },
      'application/json': { schema: { $ref: getSchemaPath(MediaUrlResponseDto) } },
    },
  })
  @ApiExtraModels(MediaUrlResponseDto)
  @ApiPartialContentResponse({
    description: 'The one `Range` asked for',
    headers: { ...SERVED_HEADERS, 'Content-Range': { description: '`bytes <first>-<last>/<size>`', schema: { type: 'string' } } },
    content: { 'image/*': { schema: BINARY } },
  })
  @ApiNotModifiedResponse({ description: 'Not modified: `If-None-Match` matched the ETag (no body)', headers: { ETag: SERVED_HEADERS['ETag'] } })
  async download(
    @CurrentPrincipal() principal: Principal,
    @Param('id') id: string,
    @Query('download') download: unknown,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ) {
    const wantsAttachment = wantsDownload(download);
    if (!this.config.proxyDownload) {
      const { signed } = await this.presignMedia.presign(principal, id, { download: wantsAttachment });
      return reply.send({ url: signed.url, expires_at: signed.expiresAt.toISOString() });
    }
    const media = await this.openMedia.readable(principal, id);
    const etag = `"${media.sha256}"`;
    if (notModified(request, etag)) {
      return reply.status(304).header('etag', etag).header('cache-control', 'private, max-age=3600').send();
    }
    const range = requestedRange(request, media.bytes, etag);
    if (range === 'unsatisfiable') return sendRangeNotSatisfiable(request, reply, media.bytes);
    const object = request.method === 'HEAD' ? null : await this.openMedia.stream(media, range ?? undefined);
    reply
      .header('content-type', media.mimeType)
      .header('content-length', String(object?.bytes ?? servedLength(range, media.bytes)))
      .header('etag', etag)
      .header('accept-ranges', 'bytes')
      .header('cache-control', 'private, max-age=3600')
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', "default-src 'none'")
      .header('content-disposition', wantsAttachment ? attachment(media) : 'inline');
    if (range) reply.status(206).header('content-range', `bytes ${range.start}-${range.end}/${media.bytes}`);
    return object ? reply.send(object.body) : reply.send();
  }

  @Get(':id/presign')
  @ApiOperation({ summary: 'A short-lived URL for one object' })
  @ApiQuery(DOWNLOAD_QUERY)
  @ApiOkResponse({ type: SignedUrlResponseDto, description: 'A signed URL (cached and reused while more than half its lifetime remains)' })
  async presign(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @Query('download') download?: unknown): Promise<SignedUrlResponseDto> {
    const { media, signed } = await this.presignMedia.presign(principal, id, { download: wantsDownload(download) });
    return toSignedUrlResponse(media, signed);
  }

  @Get(':id/metadata')
  @ApiOperation({ summary: 'What is stored for an id' })
  @ApiOkResponse({ type: MediaMetadataDto, description: 'The metadata; a pending reservation too, to its owner' })
  async metadata(@CurrentPrincipal() principal: Principal, @Param('id') id: string): Promise<MediaMetadataDto> {
    return toMetadata(await this.openMedia.describe(principal, id));
  }

  @Put(':id/pin')
  @Writes()
  @RouteConfig(NO_BODY)
  @ApiOperation({ summary: 'Keep the object past retention' })
  @ApiOkResponse({ type: MediaMetadataDto, description: 'The metadata, pinned' })
  async pin(@CurrentPrincipal() principal: Principal, @Param('id') id: string): Promise<MediaMetadataDto> {
    return toMetadata(await this.manageMedia.setPinned(principal, id, true));
  }

  @Delete(':id/pin')
  @Writes()
  @RouteConfig(NO_BODY)
  @ApiOperation({ summary: 'Let retention apply again (the clock restarts now)' })
  @ApiOkResponse({ type: MediaMetadataDto, description: 'The metadata, unpinned, with the new retention_until' })
  async unpin(@CurrentPrincipal() principal: Principal, @Param('id') id: string): Promise<MediaMetadataDto> {
    return toMetadata(await this.manageMedia.setPinned(principal, id, false));
  }

  @Delete(':id')
  @Writes()
  @RouteConfig(NO_BODY)
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete the object and its bytes' })
  @ApiNoContentResponse({ description: 'Deleted (no body)' })
  async remove(@CurrentPrincipal() principal: Principal, @Param('id') id: string): Promise<void> {
    await this.manageMedia.delete(principal, id);
  }

  private async ingestFrom(
    principal: Principal,
    source: IngestSource,
    body: UploadSource,
    declaredMimeType: string | undefined,
    dto: { filename?: string; user_id?: string },
  ): Promise<MediaResponseDto> {
    const { media, deduped } = await this.ingestMedia.execute({
      principal,
      source,
      body,
      declaredMimeType,
      filename: dto.filename,
      userId: dto.user_id,
    });
    return this.respond(media, deduped);
  }

  private async respond(media: MediaObject, deduped: boolean): Promise<MediaResponseDto> {
    const signed = await this.presignMedia.sign(media);
    return toMediaResponse(media, deduped, signed);
  }
}

/**
 * Whether a `user_id` after the file names an owner other than the one the file was stored for.
 * A user's own token decides the owner whatever the form says, so for users it never does.
 */
function namesAnotherOwner(principal: Principal, lateUserId: string, owner: string): boolean {
  return principal.kind !== 'user' && ownerOrNothing(principal, lateUserId) !== owner;
}

/** Whom an upload is for, or undefined when the request names no valid owner (it is refused for that anyway). */
function ownerOrNothing(principal: Principal, userId: string | undefined): string | undefined {
  try {
    return resolveOwner(principal, userId);
  } catch {
    return undefined;
  }
}

/**
 * The most a multipart body may hold: a file of MEDIA_MAX_BYTES, plus 64 KiB for the form around
 * it (part headers, boundaries, `user_id` and the few other fields busboy is allowed, 4 KiB each).
 */
function multipartBodyLimit(maxBytes: number): number {
  return maxBytes + 64 * 1024;
}

/**
 * Fails the multipart parser with `tooLarge()` once `raw` has delivered more than `limit` bytes.
 * busboy cuts a text field at its size limit but reads and drops the rest, and skips parts it does
 * not keep, so without this a small file could come with a body of any size. The error reaches the
 * parts iterator and the file being staged (its spool file is removed), and stops the reading.
 * Returns the function that stops counting, for when the handler is done.
 */
function meterBody(raw: IncomingMessage, limit: number, tooLarge: () => DomainError): () => void {
  let seen = 0;
  const stop = () => raw.off('data', count);
  function count(chunk: Buffer) {
    seen += chunk.length;
    if (seen <= limit) return;
    stop();
    // The parser's listener, which hands the error on; never an 'error' nobody listens for.
    if (raw.listenerCount('error') > 0) raw.emit('error', tooLarge());
  }
  raw.on('data', count);
  return stop;
}

/**
 * A body over the limit is answered with the rest of it unread: the connection is closed after the
 * answer, rather than left to a client still sending what nobody reads. Returns `error`.
 */
function closeIfTooLarge(reply: FastifyReply, error: unknown): unknown {
  if (isDomainError(error) && error.code === 'payload_too_large') void reply.header('connection', 'close');
  return error;
}

function malformedMultipart(error: unknown): DomainError {
  return new DomainError('invalid_request', `malformed multipart body: ${error instanceof Error ? error.message : String(error)}`);
}

function forgetDataUrl(dto: IngestMediaDto, rawBody: unknown): void {
  dto.source.data_url = undefined;
  const rawSource = (rawBody as { source?: { data_url?: unknown } } | null)?.source;
  if (rawSource && typeof rawSource === 'object') rawSource.data_url = undefined;
}

const PAYLOAD_OPEN = Buffer.from('{"payload":');


function setServerTiming(reply: FastifyReply, timings: { lookupMs: number; signMs: number }): void {
  void reply.header('server-timing', `lookup;dur=${timings.lookupMs.toFixed(2)}, sign;dur=${timings.signMs.toFixed(2)}`);
}
