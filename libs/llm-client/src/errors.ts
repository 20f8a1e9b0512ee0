/**
 * Error tree of the SDK, shaped like openai-node's:
 *
 * MediaClientError
 * ├── APIError (the service answered with a non-2xx status)
 * │   ├── BadRequestError 400, AuthenticationError 401, PermissionDeniedError 403,
 * │   ├── NotFoundError 404, ConflictError 409, PayloadTooLargeError 413,
 * │   ├── UnsupportedMediaTypeError 415, UnprocessableEntityError 422,
 * │   └── RateLimitError 429, InternalServerError 5xx
 * ├── APIConnectionError (no HTTP answer at all)
 * │   └── APIConnectionTimeoutError
 * └── APIUserAbortError (the caller's AbortSignal fired)
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

/** The service (or a storage endpoint during a direct upload) answered with a non-2xx status. */
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
export class ConflictError extends APIError {}
export class PayloadTooLargeError extends APIError {}
export class UnsupportedMediaTypeError extends APIError {}
export class UnprocessableEntityError extends APIError {}
export class RateLimitError extends APIError {}
export class InternalServerError extends APIError {}

type APIErrorClass = new (status: number, body: ErrorBody | string | undefined, headers: Headers) => APIError;

const BY_STATUS: Record<number, APIErrorClass> = {
  400: BadRequestError,
  401: AuthenticationError,
  403: PermissionDeniedError,
  404: NotFoundError,
  409: ConflictError,
  413: PayloadTooLargeError,
  415: UnsupportedMediaTypeError,
  422: UnprocessableEntityError,
  429: RateLimitError,
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
