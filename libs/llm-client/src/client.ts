import { randomUUID } from 'node:crypto';
import { jsonBody, type BodySource } from './core/body.ts';
import {
  abortableSleep,
  backoffDelay,
  DEFAULT_RETRY_POLICY,
  isRetryableStatus,
  parseRetryAfter,
  retryAfterDelay,
  type RetryPolicy,
} from './core/retry.ts';
import { openTelemetryPropagator, type TracePropagator } from './core/tracing.ts';
import {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
  MediaClientError,
  UnexpectedResponseError,
  type ErrorBody,
} from './errors.ts';
import { AdminResource } from './resources/admin.ts';
import { MediaResource } from './resources/media.ts';
import { UsageResource } from './resources/usage.ts';
import { VERSION } from './version.ts';

/** Constructor options. Explicit values win; the environment is only a fallback. */
export interface MediaClientOptions {
  /** Service root, e.g. `http://media-api:8285`. Fallback: `MEDIA_API_URL`. Required. */
  baseURL?: string;
  /** Service-to-service key, sent as `X-Media-Service-Key`. Fallback: `MEDIA_API_KEY`. */
  serviceKey?: string;
  /** Sent as `Authorization: Bearer <token>` on every request. */
  bearerToken?: string;
  /** Sent as `X-Media-Admin-Key`, on `/v1/admin/*` requests only. */
  adminKey?: string;
  /** A `fetch` implementation (default: the global one). */
  fetch?: typeof fetch;
  /** Per-attempt timeout in milliseconds. Default 30 000. */
  timeoutMs?: number;
  /** Retries after the first attempt, for requests that are safe to repeat. Default 2. */
  maxRetries?: number;
  /**
   * Overall deadline of each call in milliseconds: every attempt, and the waits between them, must
   * fit in it (an attempt's timeout is cut to what is left; no retry starts that could not finish
   * its backoff in time). Default none: `timeoutMs` × attempts plus backoff. Resolve calls use
   * `resolveDeadlineMs` instead.
   */
  deadlineMs?: number;
  /**
   * The overall deadline of resolve calls (`media.resolve`, `resolvePayload`, `resolvePayloadResult`,
   * `resolveIds`, and so `resolveForProvider`), which sit on the chat hot path. Default 10 000:
   * without it, 30 s per attempt and two retries could hold a chat request for over 90 s.
   */
  resolveDeadlineMs?: number;
  /** Extra headers on every request to the service (never on requests to storage URLs). */
  defaultHeaders?: Record<string, string>;
  /**
   * Writes trace headers into each request. Default: the active OpenTelemetry context when
   * `@opentelemetry/api` is in use, else nothing. `false` turns propagation off.
   */
  propagator?: TracePropagator | false;
  /** Backoff tuning. */
  retry?: Partial<RetryPolicy>;
  /** Replaces the wait between attempts (tests, custom schedulers). Must reject when `signal` aborts. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Where fallbacks are read from. Default `process.env`. */
  env?: Record<string, string | undefined>;
}

/** Options every method accepts as its last argument. */
export interface RequestOptions {
  /** Act for this end user (`X-Jan-User-Id`); only trusted service callers may. */
  userId?: string;
  /** Aborts the call (including waits between retries) with `APIUserAbortError`. */
  signal?: AbortSignal;
  /** Overrides the client's per-attempt timeout. */
  timeoutMs?: number;
  /** Overrides the client's retry count. */
  maxRetries?: number;
  /** Overrides the client's overall deadline for this call (`deadlineMs`, or `resolveDeadlineMs` for resolve). */
  deadlineMs?: number;
  /**
   * `Idempotency-Key` for POSTs. Ingest, upload and complete get one generated automatically;
   * passing one on another POST makes it retryable.
   */
  idempotencyKey?: string;
  /** W3C `traceparent` for this call; wins over the propagator. */
  traceparent?: string;
  /** Extra headers for this call; they win over everything else. */
  headers?: Record<string, string>;
}

/**
 * How a request may be repeated:
 * - `safe`: reads and idempotent writes (GET, PUT, DELETE, resolve) — retried;
 * - `auto-key`: POSTs the server deduplicates by `Idempotency-Key` — a key is generated unless
 *   given, then retried;
 * - `unsafe`: other POSTs — retried only when the caller supplies an idempotency key.
 */
export type RetryClass = 'safe' | 'auto-key' | 'unsafe';

/** @internal What a resource asks the transport to do. */
export interface RequestSpec {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** A path under the base URL, or an absolute URL (storage endpoints). */
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: BodySource;
  retry: RetryClass;
  /** Adds the admin credential. */
  admin?: boolean;
  /** Extra headers dictated by the endpoint (e.g. a signed upload's required headers). */
  headers?: Record<string, string>;
  /**
   * A 404 on a retry after an ambiguous failure means an earlier attempt already did the job
   * (DELETE): report success instead of a confusing NotFoundError.
   */
  notFoundOnRetryIsSuccess?: boolean;
  /** Follow redirects (downloads); credentials are dropped when the target is another origin. */
  followRedirects?: boolean;
  /** On the chat hot path (resolve): held to `resolveDeadlineMs` rather than `deadlineMs`. */
  hotPath?: boolean;
}

/** @internal A response handler run inside the attempt, so its reading is covered by the timeout. */
export type Consume<T> = (response: Response, attempt: AttemptControl) => Promise<T>;

/** @internal */
export interface AttemptControl {
  /**
   * Hand the body over to the caller as a stream: the timeout stops (a download may take longer
   * than any request), the caller's signal stays linked so it can still abort the stream.
   */
  detachForStream(): void;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_MAX_RETRIES = 2;
const DEFAULT_RESOLVE_DEADLINE_MS = 10_000;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

/**
 * Client for the Jan Media API.
 *
 * ```ts
 * const media = new MediaClient({ baseURL: 'http://localhost:8285', serviceKey: 'k' });
 * const obj = await media.media.ingestDataUrl('data:image/png;base64,…', {}, { userId: 'u1' });
 * const body = await media.media.resolvePayload(chatBody, {}, { userId: 'u1' });
 * ```
 */
export class MediaClient {
  readonly baseURL: string;
  readonly timeoutMs: number;
  readonly maxRetries: number;
  /** Overall deadline of each call (none by default); see {@link MediaClientOptions.deadlineMs}. */
  readonly deadlineMs: number | undefined;
  /** Overall deadline of resolve calls; see {@link MediaClientOptions.resolveDeadlineMs}. */
  readonly resolveDeadlineMs: number;

  /** Ingest, direct uploads, resolve, presign, metadata, download, pin and delete. */
  readonly media: MediaResource;
  /** The acting user's storage usage and quotas. */
  readonly usage: UsageResource;
  /** Operator endpoints (need `adminKey` or an admin `bearerToken`). */
  readonly admin: AdminResource;

  private readonly options: MediaClientOptions;
  private readonly serviceKey: string | undefined;
  private readonly fetchImpl: typeof fetch;
  private readonly retryPolicy: RetryPolicy;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly propagator: TracePropagator | undefined;

  constructor(options: MediaClientOptions = {}) {
    const env = options.env ?? process.env;
    const baseURL = options.baseURL ?? env['MEDIA_API_URL'];
    if (!baseURL) {
      throw new MediaClientError('MediaClient needs a baseURL: pass { baseURL } or set MEDIA_API_URL.');
    }
    let parsed: URL;
    try {
      parsed = new URL(baseURL);
    } catch (cause) {
      throw new MediaClientError(`MediaClient baseURL is not a valid URL: ${baseURL}`, { cause });
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new MediaClientError(`MediaClient baseURL must be http(s): ${baseURL}`);
    }
    this.options = options;
    this.baseURL = baseURL.replace(/\/+$/, '');
    this.serviceKey = options.serviceKey ?? (env['MEDIA_API_KEY'] || undefined);
    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== 'function') throw new MediaClientError('No fetch implementation available.');
    this.fetchImpl = fetchImpl;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
    this.deadlineMs = options.deadlineMs;
    this.resolveDeadlineMs = options.resolveDeadlineMs ?? DEFAULT_RESOLVE_DEADLINE_MS;
    this.retryPolicy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.sleep = options.sleep ?? abortableSleep;
    this.propagator = options.propagator === false ? undefined : (options.propagator ?? openTelemetryPropagator);

    this.media = new MediaResource(this);
    this.usage = new UsageResource(this);
    this.admin = new AdminResource(this);
  }

  /** A client sharing these options except the ones given (e.g. another credential). */
  withOptions(overrides: MediaClientOptions): MediaClient {
    return new MediaClient({ ...this.options, baseURL: this.baseURL, ...overrides });
  }

  /** `GET /healthz`. */
  async health(options: RequestOptions = {}): Promise<{ status: string; [key: string]: unknown }> {
    return this.requestJSON({ method: 'GET', path: '/healthz', retry: 'safe' }, options);
  }

  /** @internal JSON in, JSON out. */
  async requestJSON<T>(spec: RequestSpec, options: RequestOptions = {}): Promise<T> {
    return this.request(spec, options, async (response) => {
      const text = await response.text();
      if (!text) return undefined as T;
      try {
        return JSON.parse(text) as T;
      } catch (cause) {
        throw UnexpectedResponseError.notJSON(`${spec.method} ${spec.path}`, text, cause);
      }
    });
  }

  /** @internal For 204 answers. */
  async requestVoid(spec: RequestSpec, options: RequestOptions = {}): Promise<void> {
    await this.request(spec, options, async (response) => {
      await response.body?.cancel();
    });
  }

  /** @internal JSON body helper for resources. */
  json(value: unknown): BodySource {
    return jsonBody(value);
  }

  /**
   * @internal The transport: builds headers once (so retries reuse the same idempotency key),
   * then runs attempts with per-attempt timeouts and jittered backoff between them, all within the
   * call's overall deadline when it has one.
   */
  async request<T>(spec: RequestSpec, options: RequestOptions, consume: Consume<T>): Promise<T> {
    const url = this.buildURL(spec);
    const headers = this.buildHeaders(spec, options, url);
    const mayRetry =
      spec.retry === 'safe' || spec.retry === 'auto-key' || (spec.retry === 'unsafe' && !!options.idempotencyKey);
    const replayable = spec.body?.replayable ?? true;
    const maxRetries = mayRetry && replayable ? Math.max(0, options.maxRetries ?? this.maxRetries) : 0;
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const deadline = new CallDeadline(options.deadlineMs ?? (spec.hotPath ? this.resolveDeadlineMs : this.deadlineMs));
    const userSignal = options.signal;
    let lastFailure: MediaClientError | undefined;

    for (let attempt = 0; ; attempt++) {
      if (userSignal?.aborted) throw new APIUserAbortError(undefined, { cause: userSignal.reason });
      const retriesLeft = maxRetries - attempt;
      const limit = deadline.attemptLimit(timeoutMs);
      const control = new AttemptSignal(limit.ms, userSignal, limit.message);
      let retryAfterMs: number | undefined;
      try {
        let response = await this.send(url, spec, headers, control.signal);
        if (spec.followRedirects) response = await this.followRedirects(response, url, control.signal);
        if (response.ok) {
          const value = await consume(response, control);
          control.done();
          return value;
        }
        const error = await readAPIError(response);
        control.done();
        if (spec.notFoundOnRetryIsSuccess && attempt > 0 && error.status === 404) return undefined as T;
        // A quota refusal stays one until objects are deleted: waiting and asking again cannot help.
        if (!isRetryableStatus(error.status) || error.code === 'quota_exceeded' || retriesLeft <= 0) throw error;
        retryAfterMs = parseRetryAfter(error.headers);
        if (retryAfterMs !== undefined && retryAfterMs > this.retryPolicy.maxRetryAfterMs) throw error;
        lastFailure = error;
      } catch (error) {
        control.done();
        if (error instanceof MediaClientError && !(error instanceof APIConnectionError)) throw error;
        if (userSignal?.aborted) throw new APIUserAbortError(undefined, { cause: error });
        const failure =
          error instanceof APIConnectionError
            ? error
            : control.timedOut
              ? new APIConnectionTimeoutError(limit.message, { cause: error })
              : new APIConnectionError(`Connection error: ${describeCause(error)}`, { cause: error });
        if (retriesLeft <= 0) throw failure;
        lastFailure = failure;
      }
      const delay = retryAfterMs !== undefined ? retryAfterDelay(retryAfterMs) : backoffDelay(attempt, this.retryPolicy);
      // A retry with (nearly) no time left before the deadline would only hold the caller longer.
      if (lastFailure && !deadline.allows(delay)) throw lastFailure;
      try {
        await this.sleep(delay, userSignal);
      } catch (cause) {
        throw new APIUserAbortError(undefined, { cause });
      }
    }
  }

  private async send(url: URL, spec: RequestSpec, headers: Headers, signal: AbortSignal): Promise<Response> {
    const init: RequestInit & { duplex?: 'half' } = {
      method: spec.method,
      headers,
      signal,
      // Redirects are followed by hand so credentials never travel to another origin.
      redirect: 'manual',
    };
    if (spec.body) {
      init.body = spec.body.create();
      if (spec.body.streaming) init.duplex = 'half';
    }
    return this.fetchImpl(url, init);
  }

  private async followRedirects(response: Response, from: URL, signal: AbortSignal): Promise<Response> {
    let current = response;
    let currentURL = from;
    for (let hop = 0; REDIRECT_STATUSES.has(current.status); hop++) {
      const location = current.headers.get('location');
      if (!location) return current;
      if (hop >= MAX_REDIRECTS) throw new APIConnectionError(`Too many redirects from ${from.pathname}.`);
      await current.body?.cancel();
      currentURL = new URL(location, currentURL);
      const headers = this.sameOrigin(currentURL) ? this.authHeaders(false) : new Headers();
      current = await this.fetchImpl(currentURL, { method: 'GET', headers, signal, redirect: 'manual' });
    }
    return current;
  }

  private buildURL(spec: RequestSpec): URL {
    const url = /^https?:\/\//i.test(spec.path) ? new URL(spec.path) : new URL(this.baseURL + spec.path);
    for (const [key, value] of Object.entries(spec.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value));
    }
    return url;
  }

  /** True when `url` points at the service itself (credentials may go there). */
  sameOrigin(url: URL): boolean {
    return url.origin === new URL(this.baseURL).origin;
  }

  private authHeaders(admin: boolean): Headers {
    const headers = new Headers();
    for (const [key, value] of Object.entries(this.options.defaultHeaders ?? {})) headers.set(key, value);
    if (this.serviceKey) headers.set('x-media-service-key', this.serviceKey);
    if (this.options.bearerToken) headers.set('authorization', `Bearer ${this.options.bearerToken}`);
    if (admin && this.options.adminKey) headers.set('x-media-admin-key', this.options.adminKey);
    return headers;
  }

  private buildHeaders(spec: RequestSpec, options: RequestOptions, url: URL): Headers {
    // Storage endpoints (signed bucket URLs) get only what their signature expects: sending the
    // service's credentials there would leak them, and unsigned extras can break the signature.
    const toService = this.sameOrigin(url);
    const headers = toService ? this.authHeaders(!!spec.admin) : new Headers();
    if (toService) {
      headers.set('accept', 'application/json');
      headers.set('user-agent', `jan-media-client/${VERSION} node/${process.version}`);
    }
    if (spec.body?.contentType) headers.set('content-type', spec.body.contentType);
    for (const [key, value] of Object.entries(spec.headers ?? {})) headers.set(key, value);
    if (!toService) return headers;

    if (options.userId !== undefined) headers.set('x-jan-user-id', options.userId);
    if (spec.retry === 'auto-key') headers.set('idempotency-key', options.idempotencyKey ?? randomUUID());
    else if (options.idempotencyKey) headers.set('idempotency-key', options.idempotencyKey);

    const carrier: Record<string, string> = {};
    if (this.propagator) {
      try {
        this.propagator(carrier);
      } catch {
        // A broken propagator must not break the call.
      }
    }
    if (options.traceparent) carrier['traceparent'] = options.traceparent;
    for (const [key, value] of Object.entries(carrier)) headers.set(key, value);

    for (const [key, value] of Object.entries(options.headers ?? {})) headers.set(key, value);
    return headers;
  }
}

/** The share of a call's deadline that must be left for a retry after its wait. */
const MIN_ATTEMPT_SHARE = 0.1;

/** The overall deadline of one call, when it has one: it caps each attempt's timeout and the waits between them. */
class CallDeadline {
  private readonly endsAt: number | undefined;
  /** What must be left of the deadline for a retry to start. */
  private readonly reserveMs: number;

  constructor(private readonly ms: number | undefined) {
    const bounded = ms !== undefined && ms > 0 && Number.isFinite(ms);
    this.endsAt = bounded ? performance.now() + ms : undefined;
    this.reserveMs = bounded ? ms * MIN_ATTEMPT_SHARE : 0;
  }

  /** The next attempt's timeout (the per-attempt one, or what is left of the deadline if less) and what to say when it fires. */
  attemptLimit(timeoutMs: number): { ms: number; message: string } {
    const perAttempt = timeoutMs > 0 && Number.isFinite(timeoutMs) ? timeoutMs : Infinity;
    const left = this.endsAt === undefined ? Infinity : Math.max(1, this.endsAt - performance.now());
    if (left < perAttempt) return { ms: left, message: `Request exceeded its deadline of ${this.ms} ms.` };
    return { ms: perAttempt, message: `Request timed out after ${timeoutMs} ms.` };
  }

  /**
   * Whether waiting `delayMs` still leaves time for another attempt: a tenth of the deadline at
   * least. A retry begun in the deadline's last moments would only time out, and its timeout would
   * replace the server's own answer (a 503, say) as what the caller is told.
   */
  allows(delayMs: number): boolean {
    return this.endsAt === undefined || performance.now() + delayMs + this.reserveMs <= this.endsAt;
  }
}

/** Per-attempt abort wiring: a timeout plus the caller's signal, on one controller. */
class AttemptSignal implements AttemptControl {
  readonly signal: AbortSignal;
  timedOut = false;
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private streaming = false;
  private readonly onUserAbort: () => void;

  constructor(
    timeoutMs: number,
    private readonly userSignal: AbortSignal | undefined,
    timeoutMessage = `Request timed out after ${timeoutMs} ms.`,
  ) {
    this.signal = this.controller.signal;
    this.onUserAbort = () => this.controller.abort(userSignal?.reason);
    userSignal?.addEventListener('abort', this.onUserAbort, { once: true });
    if (timeoutMs > 0 && Number.isFinite(timeoutMs)) {
      this.timer = setTimeout(() => {
        this.timedOut = true;
        this.controller.abort(new APIConnectionTimeoutError(timeoutMessage));
      }, timeoutMs);
    }
  }

  detachForStream(): void {
    this.streaming = true;
    clearTimeout(this.timer);
  }

  done(): void {
    clearTimeout(this.timer);
    if (!this.streaming) this.userSignal?.removeEventListener('abort', this.onUserAbort);
  }
}

async function readAPIError(response: Response): Promise<APIError> {
  let body: ErrorBody | string | undefined;
  const text = await response.text().catch(() => '');
  if (text) {
    try {
      const parsed: unknown = JSON.parse(text);
      body = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as ErrorBody) : text;
    } catch {
      body = text;
    }
  }
  return APIError.generate(response.status, body, response.headers);
}

function describeCause(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    const detail = cause instanceof Error ? ` (${cause.message})` : '';
    return `${error.message}${detail}`;
  }
  return String(error);
}
