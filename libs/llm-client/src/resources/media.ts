import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { MediaClient, RequestOptions } from '../client.ts';
import {
  isSized,
  multipartBody,
  rawBody,
  sizedToBytes,
  type SizedUploadable,
  type Uploadable,
} from '../core/body.ts';
import { APIError, APIUserAbortError, MediaClientError, NotFoundError, StorageUploadError, UnexpectedResponseError } from '../errors.ts';
import type {
  IngestParams,
  MediaMetadata,
  MediaObject,
  PreparedUpload,
  PrepareUploadParams,
  PresignedUrl,
  PresignOptions,
  ResolvedMedia,
  ResolveMode,
  ResolvePayloadOptions,
  ResolvePayloadResult,
  UploadMethod,
} from '../types.ts';

export interface IngestOptions {
  filename?: string;
}

export interface UploadOptions {
  filename?: string;
  /** Content-Type of the file part. The service sniffs the bytes either way. */
  mimeType?: string;
}

export interface UploadDirectOptions {
  mimeType: string;
  /** `PUT` (default) or `POST` (form policy). */
  method?: UploadMethod;
  /** Hex SHA-256 to declare; computed from the bytes when omitted. `false` declares none. */
  sha256?: string | false;
}

/** A downloaded object, streamed. */
export interface MediaDownload {
  /** The bytes, as a Node stream (convert with `Readable.toWeb` if you need a web stream). */
  body: Readable;
  /** `Content-Type` of the object. */
  mime: string;
  /** `Content-Length`, when the server sent one. */
  bytes: number | undefined;
  headers: Headers;
  /** Reads the whole stream into memory. */
  buffer(): Promise<Buffer>;
}

function mediaPath(id: string, suffix = ''): string {
  return `/v1/media/${encodeURIComponent(id)}${suffix}`;
}

/** `client.media`: everything about stored objects. */
export class MediaResource {
  constructor(private readonly client: MediaClient) {}

  /**
   * `POST /v1/media` with an explicit source. Sent with an `Idempotency-Key` (generated unless
   * given) and retried on transient failures.
   */
  ingest(params: IngestParams, options: RequestOptions = {}): Promise<MediaObject> {
    return this.client.requestJSON(
      { method: 'POST', path: '/v1/media', body: this.client.json(params), retry: 'auto-key' },
      options,
    );
  }

  /** Ingests a `data:<mime>;base64,...` URL. */
  ingestDataUrl(dataUrl: string, params: IngestOptions = {}, options: RequestOptions = {}): Promise<MediaObject> {
    return this.ingest({ source: { type: 'data_url', data_url: dataUrl }, ...params }, options);
  }

  /** Has the service fetch an http(s) URL (with its SSRF protections) and store the bytes. */
  ingestRemoteUrl(url: string, params: IngestOptions = {}, options: RequestOptions = {}): Promise<MediaObject> {
    return this.ingest({ source: { type: 'remote_url', url }, ...params }, options);
  }

  /**
   * `POST /v1/media/upload` as multipart. Buffers, ArrayBuffers and Blobs are retried like
   * `ingest`; streams (Node `Readable`, web `ReadableStream`, async iterables) are sent without
   * buffering and therefore never retried.
   */
  upload(content: Uploadable, params: UploadOptions = {}, options: RequestOptions = {}): Promise<MediaObject> {
    const filename = params.filename ?? (content instanceof File ? content.name : undefined) ?? 'upload';
    const contentType =
      params.mimeType ?? (content instanceof Blob && content.type ? content.type : 'application/octet-stream');
    const body = multipartBody({}, { field: 'file', content, filename, contentType });
    return this.client.requestJSON({ method: 'POST', path: '/v1/media/upload', body, retry: 'auto-key' }, options);
  }

  /**
   * `POST /v1/media/prepare-upload`: reserves an id and returns where to send the bytes. Not
   * retried unless `options.idempotencyKey` is given (a repeat would reserve a second id).
   */
  prepareUpload(params: PrepareUploadParams, options: RequestOptions = {}): Promise<PreparedUpload> {
    return this.client.requestJSON(
      { method: 'POST', path: '/v1/media/prepare-upload', body: this.client.json(params), retry: 'unsafe' },
      options,
    );
  }

  /** `POST /v1/media/{id}/complete`: the service verifies the uploaded object and makes it readable. */
  complete(id: string, options: RequestOptions = {}): Promise<MediaObject> {
    return this.client.requestJSON({ method: 'POST', path: mediaPath(id, '/complete'), retry: 'auto-key' }, options);
  }

  /**
   * Direct-to-storage upload in one call: prepare (declaring size and SHA-256), send the bytes to
   * the signed URL (`PUT`, or `POST` with the form fields), then complete. When sending the bytes
   * fails (after its retries), the reservation is deleted (best effort) and a
   * {@link StorageUploadError} is thrown — or, when `options.signal` fired, `APIUserAbortError`.
   */
  async uploadDirect(
    content: SizedUploadable,
    params: UploadDirectOptions,
    options: RequestOptions = {},
  ): Promise<MediaObject> {
    if (!isSized(content)) {
      throw new MediaClientError('uploadDirect needs a Buffer, Uint8Array, ArrayBuffer or Blob (signed uploads need the size up front).');
    }
    const bytes = await sizedToBytes(content);
    const sha256 =
      params.sha256 === false ? undefined : (params.sha256 ?? createHash('sha256').update(bytes).digest('hex'));
    const prepared = await this.prepareUpload(
      { mime_type: params.mimeType, bytes: bytes.byteLength, sha256, method: params.method },
      { ...options, idempotencyKey: undefined },
    );
    const method = prepared.method ?? params.method ?? 'PUT';
    const target = new URL(prepared.upload_url, this.client.baseURL + '/');
    const sendOptions: RequestOptions = { signal: options.signal, timeoutMs: options.timeoutMs, maxRetries: options.maxRetries };
    try {
      await this.sendToStorage(method, target, bytes, params, prepared, options, sendOptions);
    } catch (error) {
      throw await this.abandonUpload(prepared.id, method, target, error, options);
    }
    return this.complete(prepared.id, options);
  }

  private async sendToStorage(
    method: UploadMethod,
    target: URL,
    bytes: Uint8Array,
    params: UploadDirectOptions,
    prepared: PreparedUpload,
    options: RequestOptions,
    sendOptions: RequestOptions,
  ): Promise<void> {
    // Repeating a signed upload of the same bytes overwrites the same key: safe to retry.
    if (method === 'POST') {
      const body = multipartBody(prepared.fields ?? {}, {
        field: 'file',
        content: bytes,
        filename: 'upload',
        contentType: params.mimeType,
      });
      await this.client.requestVoid(
        { method: 'POST', path: target.href, body, retry: 'safe', headers: prepared.headers },
        this.client.sameOrigin(target) ? { ...sendOptions, userId: options.userId } : sendOptions,
      );
    } else {
      await this.client.requestVoid(
        {
          method: 'PUT',
          path: target.href,
          body: rawBody(bytes, params.mimeType),
          retry: 'safe',
          headers: prepared.headers,
        },
        this.client.sameOrigin(target) ? { ...sendOptions, userId: options.userId } : sendOptions,
      );
    }
  }

  /**
   * A failed upload leaves a pending reservation that counts toward the owner's usage until the
   * sweeper reaps it: delete it now (the service allows that for pending ids), then say what the
   * storage answered, as an error of its own — the bucket's raw text is no error of the service.
   * The delete ignores the caller's signal: an aborted upload should not leave a reservation either.
   */
  private async abandonUpload(
    id: string,
    method: UploadMethod,
    target: URL,
    error: unknown,
    options: RequestOptions,
  ): Promise<MediaClientError> {
    let discarded = true;
    try {
      await this.delete(id, { ...options, signal: undefined, idempotencyKey: undefined });
    } catch (deleteError) {
      // Already gone (expired, or an earlier attempt's answer was lost) is what we wanted.
      discarded = deleteError instanceof NotFoundError;
    }
    if (error instanceof APIUserAbortError) return error;
    const status = error instanceof APIError ? error.status : undefined;
    const storageCode = error instanceof APIError ? storageErrorCode(error) : undefined;
    const reason =
      status !== undefined
        ? `${status}${storageCode ? ` ${storageCode}` : ''}`
        : `no answer (${withoutQueries(error instanceof Error ? error.message : String(error))})`;
    return new StorageUploadError({
      method,
      uploadUrl: `${target.origin}${target.pathname}`,
      mediaId: id,
      reservationDiscarded: discarded,
      status,
      storageCode,
      reason,
      cause: error,
    });
  }

  /**
   * `POST /v1/media/resolve` with the wire body as is, returning the wire answer:
   * `{ payload, mode?, keep_unresolved? }` → `{ payload, unresolved? }`, `{ ids }` → `{ media, unresolved? }`
   * (`unresolved` only under `keep_unresolved`, when some ids did not resolve). Safe to retry; held
   * to the client's `resolveDeadlineMs` (see {@link resolvePayload}).
   * {@link resolvePayloadResult}, {@link resolvePayload} and {@link resolveIds} are the unwrapped forms.
   */
  resolve<T>(
    params: { payload: T; mode?: ResolveMode; keep_unresolved?: boolean },
    options?: RequestOptions,
  ): Promise<{ payload: T; unresolved?: string[] }>;
  resolve(
    params: { ids: readonly string[]; keep_unresolved?: boolean },
    options?: RequestOptions,
  ): Promise<{ media: ResolvedMedia[]; unresolved?: string[] }>;
  resolve(params: object, options: RequestOptions = {}): Promise<unknown> {
    return this.client.requestJSON(
      { method: 'POST', path: '/v1/media/resolve', body: this.client.json(params), retry: 'safe', hotPath: true },
      options,
    );
  }

  /**
   * `POST /v1/media/resolve` with a payload: returns a copy in which every
   * `data:<mime>;jan_<id>` placeholder is replaced by a short-lived URL (`mode: 'url'`) or the
   * bytes inline (`mode: 'inline'`). Safe to retry. It sits on the chat hot path, so the whole call
   * (attempts and backoff) is held to the client's `resolveDeadlineMs` (10 s by default) unless
   * `options.deadlineMs` says otherwise. With `keepUnresolved`, use {@link resolvePayloadResult} to
   * learn which placeholders were left.
   */
  async resolvePayload<T>(payload: T, params: ResolvePayloadOptions = {}, options: RequestOptions = {}): Promise<T> {
    return (await this.resolvePayloadResult(payload, params, options)).payload;
  }

  /** {@link resolvePayload}, also returning the ids the service left `unresolved` (always an array). */
  async resolvePayloadResult<T>(
    payload: T,
    params: ResolvePayloadOptions = {},
    options: RequestOptions = {},
  ): Promise<ResolvePayloadResult<T>> {
    const body: { payload: T; mode?: ResolveMode; keep_unresolved?: boolean } = { payload };
    if (params.mode) body.mode = params.mode;
    if (params.keepUnresolved !== undefined) body.keep_unresolved = params.keepUnresolved;
    const answer = await this.resolve(body, options);
    return { payload: answer.payload, unresolved: answer.unresolved ?? [] };
  }

  /** `POST /v1/media/resolve` with ids: a short-lived URL for each. */
  async resolveIds(ids: readonly string[], options: RequestOptions = {}): Promise<ResolvedMedia[]> {
    const answer = await this.resolve({ ids }, options);
    return answer.media;
  }

  /** `GET /v1/media/{id}/presign`: a fresh signed URL (`download: true` → attachment). */
  presign(id: string, params: PresignOptions = {}, options: RequestOptions = {}): Promise<PresignedUrl> {
    return this.client.requestJSON(
      {
        method: 'GET',
        path: mediaPath(id, '/presign'),
        query: { download: params.download ? 1 : undefined },
        retry: 'safe',
      },
      options,
    );
  }

  /** `GET /v1/media/{id}/metadata`. */
  metadata(id: string, options: RequestOptions = {}): Promise<MediaMetadata> {
    return this.client.requestJSON({ method: 'GET', path: mediaPath(id, '/metadata'), retry: 'safe' }, options);
  }

  /**
   * `GET /v1/media/{id}` as a Node `Readable`. The timeout covers the wait for the response
   * headers; after that only `options.signal` can stop the stream. When the service answers with
   * `{ "url": ... }` (proxying off) or a redirect, the bytes are fetched from there without
   * credentials.
   */
  async download(id: string, options: RequestOptions = {}): Promise<MediaDownload> {
    const first = await this.client.request<{ redirect: string } | { response: Response }>(
      { method: 'GET', path: mediaPath(id), retry: 'safe', followRedirects: true },
      options,
      async (response, control) => {
        if (isJSON(response)) {
          const endpoint = 'GET /v1/media/{id}';
          const text = await response.text();
          let answer: unknown;
          try {
            answer = JSON.parse(text);
          } catch (cause) {
            throw UnexpectedResponseError.notJSON(endpoint, text, cause);
          }
          const url = answer !== null && typeof answer === 'object' ? (answer as { url?: unknown }).url : undefined;
          if (typeof url !== 'string') throw new UnexpectedResponseError(endpoint, 'JSON without a url');
          return { redirect: url };
        }
        control.detachForStream();
        return { response };
      },
    );
    if ('response' in first) return toDownload(first.response);
    const target = new URL(first.redirect, this.client.baseURL + '/');
    return this.client.request(
      { method: 'GET', path: target.href, retry: 'safe', followRedirects: true },
      this.client.sameOrigin(target) ? options : { signal: options.signal, timeoutMs: options.timeoutMs },
      async (response, control) => {
        control.detachForStream();
        return toDownload(response);
      },
    );
  }

  /** `PUT /v1/media/{id}/pin`: exempt from retention. Resolves to the metadata after the change. */
  pin(id: string, options: RequestOptions = {}): Promise<MediaMetadata> {
    return this.client.requestJSON({ method: 'PUT', path: mediaPath(id, '/pin'), retry: 'safe' }, options);
  }

  /** `DELETE /v1/media/{id}/pin`: the retention clock restarts. Resolves to the metadata after the change. */
  unpin(id: string, options: RequestOptions = {}): Promise<MediaMetadata> {
    return this.client.requestJSON({ method: 'DELETE', path: mediaPath(id, '/pin'), retry: 'safe' }, options);
  }

  /**
   * `DELETE /v1/media/{id}`. Retried like other idempotent calls; a 404 on a retry (the earlier
   * attempt succeeded but its answer was lost) counts as success.
   */
  delete(id: string, options: RequestOptions = {}): Promise<void> {
    return this.client.requestVoid(
      { method: 'DELETE', path: mediaPath(id), retry: 'safe', notFoundOnRetryIsSuccess: true },
      options,
    );
  }
}

/** The code a storage error body names: S3 and GCS send XML `<Code>…</Code>`, the local backend JSON. */
function storageErrorCode(error: APIError): string | undefined {
  if (error.code) return error.code;
  if (typeof error.body !== 'string') return undefined;
  const code = /<Code>\s*([\w.-]{1,64})\s*<\/Code>/i.exec(error.body);
  return code?.[1];
}

/** Signed URLs carry their signature in the query: never let one into a message. */
function withoutQueries(text: string): string {
  return text.replace(/(\bhttps?:\/\/[^\s?#"'<>]*)\?[^\s#"'<>]*/gi, '$1?…');
}

function isJSON(response: Response): boolean {
  return /^application\/(?:[\w.+-]+\+)?json\b/i.test(response.headers.get('content-type') ?? '');
}

function toDownload(response: Response): MediaDownload {
  const body = response.body
    ? Readable.fromWeb(response.body as unknown as import('node:stream/web').ReadableStream<Uint8Array>)
    : Readable.from([]);
  const length = response.headers.get('content-length');
  return {
    body,
    mime: response.headers.get('content-type') ?? 'application/octet-stream',
    bytes: length !== null && /^\d+$/.test(length) ? Number(length) : undefined,
    headers: response.headers,
    async buffer() {
      const chunks: Buffer[] = [];
      for await (const chunk of body) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
      return Buffer.concat(chunks);
    },
  };
}
