/**
 * Error tree of the SDK, shaped like openai-node's:
 *
 * MediaClientError
 * ├── APIError (the service answered with a non-2xx status)
 * │   ├── BadRequestError 400, AuthenticationError 401, PermissionDeniedError 403,
 * │   ├── NotFoundError 404, MethodNotAllowedError 405, RequestTimeoutError 408,
 * │   ├── ConflictError 409, GoneError 410, PayloadTooLargeError 413,
 * │   ├── UnsupportedMediaTypeError 415, RangeNotSatisfiableError 416,
 * │   ├── UnprocessableEntityError 422, RequestHeaderFieldsTooLargeError 431,
 * │   └── RateLimitError 429, InternalServerError 5xx
 * ├── APIConnectionError (no HTTP answer at all)
 * │   └── APIConnectionTimeoutError
 * ├── APIUserAbortError (the caller's AbortSignal fired)
 * ├── UnexpectedResponseError (a 2xx that is not the endpoint's answer: not JSON, or JSON without its fields)
 * ├── StorageUploadError (uploadDirect: the signed-URL upload to storage failed)
 * ├── MediaClientConfigError (an option or environment variable the SDK cannot read)
 * └── UnresolvablePlaceholderError (resolveForProvider: a placeholder inside a field that must be a bare URL)
 */
export class MediaClientError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The body the service sends with every error: `{ error, code, request_id }`. */
export interface ErrorBody {
  error?: string;
  code?: string;
  request_id?: string;
  [key: string]: unknown;
}

/** The service answered with a non-2xx status. */
export class APIError extends MediaClientError {
  /** HTTP status of the response. */
  readonly status: number;
  /** Stable machine code from the body (`media_not_found`, `quota_exceeded`…), when present. */
  readonly code: string | undefined;
  /** `request_id` from the body, or the `X-Request-Id` response header. Quote it in bug reports. */
  readonly requestId: string | undefined;
  /** Parsed JSON error body, or the raw text when it was not JSON. */
  readonly body: ErrorBody | string | undefined;
  /** Response headers. */
  readonly headers: Headers;

  constructor(status: number, body: ErrorBody | string | undefined, headers: Headers, message?: string) {
    super(message ?? APIError.describe(status, body));
    this.status = status;
    this.body = body;
    this.headers = headers;
    const json = typeof body === 'object' && body !== null ? body : undefined;
    this.code = typeof json?.code === 'string' ? json.code : undefined;
    this.requestId =
      (typeof json?.request_id === 'string' ? json.request_id : undefined) ?? headers.get('x-request-id') ?? undefined;
  }

  /** The subclass matching `status`, so callers can `catch (e) { if (e instanceof NotFoundError) … }`. */
  static generate(status: number, body: ErrorBody | string | undefined, headers: Headers): APIError {
    const Class = statusClass(status);
    return new Class(status, body, headers);
  }

  private static describe(status: number, body: ErrorBody | string | undefined): string {
    if (typeof body === 'object' && body !== null && typeof body.error === 'string') return `${status} ${body.error}`;
    if (typeof body === 'string' && body.trim()) return `${status} ${body.trim().slice(0, 200)}`;
    return `${status} status code (no body)`;
  }
}

export class BadRequestError extends APIError {}
export class AuthenticationError extends APIError {}
export class PermissionDeniedError extends APIError {}
export class NotFoundError extends APIError {}
export class MethodNotAllowedError extends APIError {}
/** The request did not arrive whole in time (`request_timeout`); retried like a 429 or 5xx. */
export class RequestTimeoutError extends APIError {}
export class ConflictError extends APIError {}
/** A direct upload's reservation expired before `complete` (`upload_expired`): prepare again. */
export class GoneError extends APIError {}
export class PayloadTooLargeError extends APIError {}
export class UnsupportedMediaTypeError extends APIError {}
export class RangeNotSatisfiableError extends APIError {}
export class UnprocessableEntityError extends APIError {}
export class RequestHeaderFieldsTooLargeError extends APIError {}
export class RateLimitError extends APIError {}
export class InternalServerError extends APIError {}

type APIErrorClass = new (status: number, body: ErrorBody | string | undefined, headers: Headers) => APIError;

const BY_STATUS: Record<number, APIErrorClass> = {
  400: BadRequestError,
  401: AuthenticationError,
  403: PermissionDeniedError,
  404: NotFoundError,
  405: MethodNotAllowedError,
  408: RequestTimeoutError,
  409: ConflictError,
  410: GoneError,
  413: PayloadTooLargeError,
  415: UnsupportedMediaTypeError,
  416: RangeNotSatisfiableError,
  422: UnprocessableEntityError,
  429: RateLimitError,
  431: RequestHeaderFieldsTooLargeError,
};

function statusClass(status: number): APIErrorClass {
  if (status >= 500) return InternalServerError;
  return BY_STATUS[status] ?? APIError;
}

/** The request never got an HTTP answer (DNS, refused connection, reset socket…). */
export class APIConnectionError extends MediaClientError {
  constructor(message = 'Connection error.', options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** No answer within `timeoutMs` (per attempt). */
export class APIConnectionTimeoutError extends APIConnectionError {
  constructor(message = 'Request timed out.', options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The caller aborted the request through its `signal`. Never retried. */
export class APIUserAbortError extends MediaClientError {
  constructor(message = 'Request was aborted.', options?: { cause?: unknown }) {
    super(message, options);
  }
}

/**
 * The service answered 2xx with something that is not what the endpoint answers: a body that is
 * not JSON (an HTML page), or JSON without the fields the endpoint always sends. Most often
 * another service behind `baseURL` (a gateway's status page, say). Thrown instead of making up a
 * result, such as an empty listing, from an answer the SDK does not understand.
 */
export class UnexpectedResponseError extends MediaClientError {
  readonly code = 'unexpected_response';
  /** `METHOD /path` of the endpoint that answered. */
  readonly endpoint: string;

  /**
   * @param answered what came back, completing "`endpoint` answered …": `'JSON without an items
   *   array'`, or {@link UnexpectedResponseError.notJSON}'s description of a body that is not JSON.
   */
  constructor(endpoint: string, answered: string, options?: { cause?: unknown }) {
    super(`${endpoint} answered ${answered}: is baseURL the Jan Media API's root?`, options);
    this.endpoint = endpoint;
  }

  /** A 2xx body that does not parse as JSON; the start of it is quoted in the message. */
  static notJSON(endpoint: string, body: string, cause?: unknown): UnexpectedResponseError {
    const start = body.trim().slice(0, 120);
    return new UnexpectedResponseError(endpoint, `a body that is not JSON (${JSON.stringify(start)}${body.trim().length > 120 ? '…' : ''})`, { cause });
  }
}

/**
 * `uploadDirect`'s upload of the bytes to the signed URL failed: the bucket (or, on the local
 * backend, the service's upload endpoint) refused them or did not answer. Prepare and complete,
 * the calls to the service itself, throw the usual {@link APIError}s. Before this is thrown the
 * reservation made by prepare is deleted (best effort), so it does not count toward the owner's
 * usage until it expires.
 */
export class StorageUploadError extends MediaClientError {
  readonly code = 'storage_upload_failed';
  /** HTTP status of the storage's answer; `undefined` when there was none (connection error, timeout). */
  readonly status: number | undefined;
  /** The storage's own error code, when its body names one (S3/GCS `<Code>`, or a JSON `code`). */
  readonly storageCode: string | undefined;
  /** The id prepare reserved for this upload. */
  readonly mediaId: string;
  /** `true` when the reservation is gone; `false` when deleting it failed (it then expires on its own). */
  readonly reservationDiscarded: boolean;
  /** Where the bytes were sent, without the query string (it holds the signature). */
  readonly uploadUrl: string;

  constructor(params: {
    method: string;
    uploadUrl: string;
    mediaId: string;
    reservationDiscarded: boolean;
    status: number | undefined;
    storageCode: string | undefined;
    reason: string;
    cause: unknown;
  }) {
    const outcome = params.reservationDiscarded
      ? `the reservation ${params.mediaId} was discarded`
      : `the reservation ${params.mediaId} could not be discarded (it expires with the upload deadline)`;
    super(`Upload to storage failed: ${params.reason} (${params.method} ${params.uploadUrl}); ${outcome}.`, {
      cause: params.cause,
    });
    this.status = params.status;
    this.storageCode = params.storageCode;
    this.mediaId = params.mediaId;
    this.reservationDiscarded = params.reservationDiscarded;
    this.uploadUrl = params.uploadUrl;
  }
}

/**
 * A setting the SDK reads (an option, or its environment fallback such as `MEDIA_CLIENT_ENABLED`)
 * holds a value it does not understand. Thrown at construction, so a typo fails the deploy instead
 * of silently meaning something else.
 */
export class MediaClientConfigError extends MediaClientError {
  readonly code = 'invalid_configuration';
  /** The option or environment variable at fault. */
  readonly variable: string;

  constructor(variable: string, message: string) {
    super(message);
    this.variable = variable;
  }
}

/**
 * `resolveForProvider` found placeholders inside a longer string in a field that must hold a bare
 * URL or data URL (an image URL, an Anthropic source, Gemini's `inline_data.data` or
 * `file_data.file_uri`). The service would swap the placeholder in place and leave an invalid value
 * (`gs://bucket/data:image/png;base64,…`), so the SDK does not send them to be resolved: with
 * `keepUnresolved` they stay as they are and are reported through `onUnresolved`; without it this is
 * thrown before any call.
 */
export class UnresolvablePlaceholderError extends MediaClientError {
  readonly code = 'placeholder_not_bare';
  /** The ids of the placeholders concerned, in document order. */
  readonly ids: string[];
  /** Where they sit, as `contents[0].parts[1].file_data.file_uri`. */
  readonly paths: string[];

  constructor(ids: string[], paths: string[]) {
    super(
      `placeholder inside a longer string where a bare URL is required (${paths.slice(0, 3).join(', ')}${paths.length > 3 ? ', …' : ''}): ` +
        'it would resolve to an invalid value; pass keepUnresolved to leave it as it is',
    );
    this.ids = ids;
    this.paths = paths;
  }
}
