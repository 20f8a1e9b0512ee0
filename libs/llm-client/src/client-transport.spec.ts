import { MediaClient } from './client';
import {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
  AuthenticationError,
  BadRequestError,
  ConflictError,
  GoneError,
  MethodNotAllowedError,
  RangeNotSatisfiableError,
  RequestHeaderFieldsTooLargeError,
  RequestTimeoutError,
  InternalServerError,
  MediaClientError,
  NotFoundError,
  PayloadTooLargeError,
  PermissionDeniedError,
  RateLimitError,
  UnprocessableEntityError,
  UnsupportedMediaTypeError,
} from './errors';
import { BASE_URL, fakeFetch, fakeSleep, hang, json, MEDIA_OBJECT, noContent, type Handler } from './testing/fake-fetch';

const ID = MEDIA_OBJECT.id;

function setup(handler: Handler | Handler[], extra: ConstructorParameters<typeof MediaClient>[0] = {}) {
  const fake = fakeFetch(handler);
  const sleeper = fakeSleep();
  const client = new MediaClient({
    baseURL: BASE_URL,
    serviceKey: 'svc-key',
    fetch: fake.fetch,
    propagator: false,
    sleep: sleeper.sleep,
    env: {},
    ...extra,
  });
  return { client, calls: fake.calls, waits: sleeper.waits };
}

async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('error mapping', () => {
  const cases: Array<[number, string, new (...args: never[]) => APIError]> = [
    [400, 'invalid_request', BadRequestError],
    [401, 'unauthorized', AuthenticationError],
    [403, 'invalid_signature', PermissionDeniedError],
    // A 403 the service does not send (a gateway's, with or without a code) is still PermissionDeniedError.
    [403, 'gateway_denied', PermissionDeniedError],
    [404, 'media_not_found', NotFoundError],
    [405, 'method_not_allowed', MethodNotAllowedError],
    [408, 'request_timeout', RequestTimeoutError],
    [409, 'conflict', ConflictError],
    [410, 'upload_expired', GoneError],
    [416, 'range_not_satisfiable', RangeNotSatisfiableError],
    [431, 'headers_too_large', RequestHeaderFieldsTooLargeError],
    [413, 'payload_too_large', PayloadTooLargeError],
    [415, 'unsupported_media_type', UnsupportedMediaTypeError],
    [422, 'checksum_mismatch', UnprocessableEntityError],
    [429, 'rate_limited', RateLimitError],
    [500, 'internal_error', InternalServerError],
    [503, 'storage_unavailable', InternalServerError],
    [418, 'teapot', APIError],
  ];

  it.each(cases)('%d → %p with code and request id', async (status, code, Class) => {
    const { client } = setup(
      () => json(status, { error: `human ${code}`, code, request_id: `req-${status}` }, { 'x-request-id': 'hdr' }),
      { maxRetries: 0 },
    );
    const error = (await caught(client.media.metadata(ID))) as APIError;
    expect(error).toBeInstanceOf(Class);
    expect(error).toBeInstanceOf(APIError);
    expect(error).toBeInstanceOf(MediaClientError);
    expect(error.status).toBe(status);
    expect(error.code).toBe(code);
    expect(error.requestId).toBe(`req-${status}`);
    expect(error.message).toBe(`${status} human ${code}`);
    expect(error.body).toEqual({ error: `human ${code}`, code, request_id: `req-${status}` });
    expect(error.headers.get('x-request-id')).toBe('hdr');
    expect(error.name).toBe(Class.name);
  });

  it('falls back to the X-Request-Id header and keeps a non-JSON body as text', async () => {
    const { client } = setup(
      () => new Response('upstream exploded', { status: 502, headers: { 'x-request-id': 'r-42' } }),
      { maxRetries: 0 },
    );
    const error = (await caught(client.media.metadata(ID))) as APIError;
    expect(error).toBeInstanceOf(InternalServerError);
    expect(error.requestId).toBe('r-42');
    expect(error.code).toBeUndefined();
    expect(error.body).toBe('upstream exploded');
    expect(error.message).toBe('502 upstream exploded');
  });

  it('wraps network failures in APIConnectionError with the cause', async () => {
    const { client } = setup(
      () => {
        throw new TypeError('fetch failed', { cause: new Error('ECONNREFUSED') });
      },
      { maxRetries: 0 },
    );
    const error = (await caught(client.media.metadata(ID))) as APIConnectionError;
    expect(error).toBeInstanceOf(APIConnectionError);
    expect(error).not.toBeInstanceOf(APIConnectionTimeoutError);
    expect(error.message).toContain('ECONNREFUSED');
    expect((error as Error & { cause: unknown }).cause).toBeInstanceOf(TypeError);
  });
});

describe('retries', () => {
  it('retries safe requests on 5xx, 408 and 429 up to maxRetries with growing backoff', async () => {
    const { client, calls, waits } = setup(
      [() => json(500, {}), () => json(408, {}), () => json(429, {}), () => json(200, { id: ID })],
      { maxRetries: 3 },
    );
    expect(await client.media.metadata(ID)).toEqual({ id: ID });
    expect(calls).toHaveLength(4);
    expect(waits).toHaveLength(3);
    // 500, 1000, 2000 ms, each reduced by at most 25% jitter.
    [500, 1000, 2000].forEach((base, i) => {
      expect(waits[i]).toBeGreaterThanOrEqual(base * 0.75);
      expect(waits[i]).toBeLessThanOrEqual(base);
    });
  });

  it('gives up after maxRetries and throws the last error', async () => {
    const { client, calls } = setup(() => json(503, { error: 'down', code: 'storage_unavailable' }));
    const error = (await caught(client.media.metadata(ID))) as APIError;
    expect(error).toBeInstanceOf(InternalServerError);
    expect(calls).toHaveLength(3);
  });

  it('caps the backoff', async () => {
    const { client, waits } = setup(() => json(500, {}), { maxRetries: 6, retry: { initialDelayMs: 1000, maxDelayMs: 3000 } });
    await caught(client.media.metadata(ID));
    expect(Math.max(...waits)).toBeLessThanOrEqual(3000);
    expect(waits.slice(2).every((w) => w >= 2250)).toBe(true);
  });

  it('does not retry other 4xx', async () => {
    const { client, calls } = setup(() => json(400, { error: 'bad' }));
    await caught(client.media.metadata(ID));
    expect(calls).toHaveLength(1);
  });

  it('honours Retry-After in seconds and as an HTTP date', async () => {
    const date = new Date(Date.now() + 3_000).toUTCString();
    const { client, waits } = setup([
      () => json(429, {}, { 'retry-after': '7' }),
      () => json(503, {}, { 'retry-after': date }),
      () => json(200, { id: ID }),
    ]);
    await client.media.metadata(ID);
    // At least what the server asked, and at most a quarter more (spread across clients).
    expect(waits[0]).toBeGreaterThanOrEqual(7000);
    expect(waits[0]).toBeLessThanOrEqual(8750);
    expect(waits[1]).toBeGreaterThan(1000);
    expect(waits[1]).toBeLessThanOrEqual(3750);
  });

  it('throws instead of waiting out a Retry-After beyond the cap', async () => {
    const { client, calls, waits } = setup(() => json(429, { error: 'slow down' }, { 'retry-after': '3600' }));
    const error = await caught(client.media.metadata(ID));
    expect(error).toBeInstanceOf(RateLimitError);
    expect(calls).toHaveLength(1);
    expect(waits).toHaveLength(0);
  });

  it('does not retry a quota refusal: only deleting objects lifts it', async () => {
    const { client, calls, waits } = setup(() => json(429, { error: 'over quota', code: 'quota_exceeded' }));
    const error = await caught(client.media.metadata(ID));
    expect(error).toBeInstanceOf(RateLimitError);
    expect((error as RateLimitError).code).toBe('quota_exceeded');
    expect(calls).toHaveLength(1);
    expect(waits).toHaveLength(0);
  });

  it('retries connection errors on safe requests', async () => {
    const { client, calls } = setup([
      () => {
        throw new TypeError('fetch failed');
      },
      () => json(200, { payload: { ok: true } }),
    ]);
    expect(await client.media.resolvePayload({ ok: true })).toEqual({ ok: true });
    expect(calls).toHaveLength(2);
  });

  it('never retries an unsafe POST without an idempotency key', async () => {
    const { client, calls } = setup(() => json(503, {}));
    await caught(client.media.prepareUpload({ mime_type: 'image/png' }));
    await caught(client.admin.purge({ ids: [ID], dryRun: false }));
    await caught(client.admin.reissue(ID));
    expect(calls).toHaveLength(3);
  });

  it('retries an unsafe POST when the caller gives an idempotency key, sending the same key', async () => {
    const { client, calls } = setup([() => json(503, {}), () => json(200, { purged: [ID], count: 1 })]);
    await client.admin.purge({ ids: [ID], dryRun: false }, { idempotencyKey: 'purge-1' });
    expect(calls).toHaveLength(2);
    expect(calls.map((c) => c.headers.get('idempotency-key'))).toEqual(['purge-1', 'purge-1']);
  });

  it('retries ingest with one generated idempotency key across attempts', async () => {
    const { client, calls } = setup([
      () => {
        throw new TypeError('socket hang up');
      },
      () => json(502, {}),
      () => json(200, MEDIA_OBJECT),
    ]);
    await client.media.ingestRemoteUrl('https://example.com/a.png');
    expect(calls).toHaveLength(3);
    const keys = new Set(calls.map((c) => c.headers.get('idempotency-key')));
    expect(keys.size).toBe(1);
    // A second call gets a key of its own.
    await client.media.ingestRemoteUrl('https://example.com/a.png');
    expect(calls[3]!.headers.get('idempotency-key')).not.toBe(calls[0]!.headers.get('idempotency-key'));
  });

  it('respects a per-call maxRetries', async () => {
    const { client, calls } = setup(() => json(500, {}));
    await caught(client.media.metadata(ID, { maxRetries: 0 }));
    expect(calls).toHaveLength(1);
  });

  it('treats a 404 on a retried DELETE as success (the first attempt deleted it)', async () => {
    const { client, calls } = setup([() => json(503, {}), () => json(404, { code: 'media_not_found' })]);
    await expect(client.media.delete(ID)).resolves.toBeUndefined();
    expect(calls).toHaveLength(2);
    const first = setup(() => json(404, { code: 'media_not_found' }));
    await expect(first.client.media.delete(ID)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('stops waiting between attempts when the caller aborts', async () => {
    const controller = new AbortController();
    const fake = fakeFetch(() => json(503, {}));
    const client = new MediaClient({
      baseURL: BASE_URL,
      fetch: fake.fetch,
      propagator: false,
      env: {},
      retry: { initialDelayMs: 60_000, maxDelayMs: 60_000 },
    });
    const pending = caught(client.media.metadata(ID, { signal: controller.signal }));
    await new Promise((r) => setTimeout(r, 10));
    controller.abort();
    expect(await pending).toBeInstanceOf(APIUserAbortError);
    expect(fake.calls).toHaveLength(1);
  });

  it('uses a real (unmocked) sleep between attempts by default', async () => {
    const fake = fakeFetch([() => json(500, {}), () => json(200, { id: ID, pinned: true })]);
    const client = new MediaClient({
      baseURL: BASE_URL,
      fetch: fake.fetch,
      propagator: false,
      env: {},
      retry: { initialDelayMs: 30, maxDelayMs: 30 },
    });
    const started = Date.now();
    await client.media.pin(ID);
    expect(Date.now() - started).toBeGreaterThanOrEqual(20);
    expect(fake.calls).toHaveLength(2);
  });
});

describe('timeouts and aborts', () => {
  it('starts no retry that would leave less than a tenth of the deadline after its wait', async () => {
    // The clock moves only when the client waits: every 503 comes back at once.
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate', 'queueMicrotask', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    try {
      const waits: number[] = [];
      const client = new MediaClient({
        baseURL: BASE_URL,
        fetch: fakeFetch(() => json(503, { error: 'busy' })).fetch,
        propagator: false,
        env: {},
        maxRetries: 100,
        retry: { initialDelayMs: 100, maxDelayMs: 100 },
        sleep: async (ms) => {
          waits.push(ms);
          jest.advanceTimersByTime(ms);
        },
      });
      const error = await caught(client.media.metadata(ID, { deadlineMs: 1_000 }));
      expect(error).toBeInstanceOf(APIError);
      expect((error as APIError).status).toBe(503);
      const waited = waits.reduce((sum, ms) => sum + ms, 0);
      // Every retry began with at least 100 ms of the 1,000 left; the next wait would have cut into them.
      expect(waited).toBeLessThanOrEqual(900);
      expect(waited).toBeGreaterThan(900 - 100);
    } finally {
      jest.useRealTimers();
    }
  });

  it('times out an attempt and retries it when safe', async () => {
    const { client, calls, waits } = setup([hang, () => json(200, { id: ID })], { timeoutMs: 20 });
    expect(await client.media.metadata(ID)).toEqual({ id: ID });
    expect(calls).toHaveLength(2);
    expect(waits).toHaveLength(1);
    expect(calls[0]!.init.signal!.aborted).toBe(true);
  });

  it('throws APIConnectionTimeoutError when every attempt times out', async () => {
    const { client, calls } = setup(hang, { timeoutMs: 15, maxRetries: 1 });
    const error = await caught(client.media.metadata(ID));
    expect(error).toBeInstanceOf(APIConnectionTimeoutError);
    expect(error).toBeInstanceOf(APIConnectionError);
    expect(calls).toHaveLength(2);
  });

  it('applies a per-call timeout', async () => {
    const { client } = setup(hang, { timeoutMs: 60_000, maxRetries: 0 });
    const started = Date.now();
    expect(await caught(client.media.metadata(ID, { timeoutMs: 15 }))).toBeInstanceOf(APIConnectionTimeoutError);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('covers reading the body with the timeout', async () => {
    const { client } = setup(
      (request) => {
        const body = new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(new TextEncoder().encode('{"id":'));
            request.init.signal!.addEventListener('abort', () => controller.error(request.init.signal!.reason));
          },
        });
        return new Response(body, { headers: { 'content-type': 'application/json' } });
      },
      { timeoutMs: 20, maxRetries: 0 },
    );
    expect(await caught(client.media.metadata(ID))).toBeInstanceOf(APIConnectionTimeoutError);
  });

  it('maps a caller abort during the request to APIUserAbortError and does not retry', async () => {
    const controller = new AbortController();
    const { client, calls } = setup((request) => {
      setTimeout(() => controller.abort(), 5);
      return hang(request);
    });
    expect(await caught(client.media.metadata(ID, { signal: controller.signal }))).toBeInstanceOf(APIUserAbortError);
    expect(calls).toHaveLength(1);
  });

  it('does not call fetch at all with an already aborted signal', async () => {
    const { client, calls } = setup(() => json(200, {}));
    const controller = new AbortController();
    controller.abort();
    expect(await caught(client.media.metadata(ID, { signal: controller.signal }))).toBeInstanceOf(APIUserAbortError);
    expect(calls).toHaveLength(0);
  });
});
