import { MediaClient } from './client';
import { MediaClientError, UnexpectedResponseError } from './errors';
import { BASE_URL, fakeFetch, json, MEDIA_OBJECT, noContent, type RecordedRequest } from './testing/fake-fetch';

const ID = MEDIA_OBJECT.id;
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==',
  'base64',
);

function clientWith(handler: Parameters<typeof fakeFetch>[0], extra: ConstructorParameters<typeof MediaClient>[0] = {}) {
  const fake = fakeFetch(handler);
  const client = new MediaClient({
    baseURL: BASE_URL,
    serviceKey: 'svc-key',
    fetch: fake.fetch,
    propagator: false,
    env: {},
    ...extra,
  });
  return { client, calls: fake.calls };
}

function only(calls: RecordedRequest[]): RecordedRequest {
  expect(calls).toHaveLength(1);
  return calls[0]!;
}

describe('MediaClient configuration', () => {
  it('reads MEDIA_API_URL and MEDIA_API_KEY only as fallbacks', async () => {
    const fake = fakeFetch(() => json(200, { status: 'ok' }));
    const fromEnv = new MediaClient({
      fetch: fake.fetch,
      propagator: false,
      env: { MEDIA_API_URL: 'http://127.0.0.1:9999/', MEDIA_API_KEY: 'env-key' },
    });
    await fromEnv.health();
    expect(fake.calls[0]!.url.href).toBe('http://127.0.0.1:9999/healthz');
    expect(fake.calls[0]!.headers.get('x-media-service-key')).toBe('env-key');

    const explicit = new MediaClient({
      baseURL: BASE_URL,
      serviceKey: 'explicit',
      fetch: fake.fetch,
      propagator: false,
      env: { MEDIA_API_URL: 'http://127.0.0.1:9999', MEDIA_API_KEY: 'env-key' },
    });
    await explicit.health();
    expect(fake.calls[1]!.url.origin).toBe(BASE_URL);
    expect(fake.calls[1]!.headers.get('x-media-service-key')).toBe('explicit');
  });

  it('fails fast without a base URL or with a non-http one', () => {
    expect(() => new MediaClient({ env: {} })).toThrow(/MEDIA_API_URL/);
    expect(() => new MediaClient({ baseURL: 'ftp://127.0.0.1', env: {} })).toThrow(MediaClientError);
    expect(() => new MediaClient({ baseURL: 'not a url', env: {} })).toThrow(MediaClientError);
  });

  it('keeps a path prefix of the base URL (gateway mounts)', async () => {
    const { client, calls } = clientWith(() => json(200, MEDIA_OBJECT), { baseURL: `${BASE_URL}/media/` });
    await client.media.metadata(ID);
    expect(only(calls).url.pathname).toBe(`/media/v1/media/${ID}/metadata`);
  });

  it('sends default headers, bearer token and per-call headers, per-call winning', async () => {
    const { client, calls } = clientWith(() => json(200, MEDIA_OBJECT), {
      bearerToken: 'tok',
      defaultHeaders: { 'x-tenant': 'a', 'x-extra': 'default' },
    });
    await client.media.metadata(ID, { headers: { 'x-extra': 'call' } });
    const { headers } = only(calls);
    expect(headers.get('authorization')).toBe('Bearer tok');
    expect(headers.get('x-tenant')).toBe('a');
    expect(headers.get('x-extra')).toBe('call');
    expect(headers.get('accept')).toBe('application/json');
    expect(headers.get('user-agent')).toMatch(/^jan-media-client\//);
    expect(headers.get('x-media-admin-key')).toBeNull();
  });

  it('withOptions derives a client with another credential', async () => {
    const { client, calls } = clientWith(() => json(200, { status: 'ok' }));
    await client.withOptions({ serviceKey: 'other' }).health();
    expect(only(calls).headers.get('x-media-service-key')).toBe('other');
  });
});

describe('MediaClient request building', () => {
  it('ingests a data URL with an idempotency key and the acting user', async () => {
    const { client, calls } = clientWith(() => json(200, MEDIA_OBJECT));
    const dataUrl = `data:image/png;base64,${PNG.toString('base64')}`;
    const result = await client.media.ingestDataUrl(dataUrl, { filename: 'x.png' }, { userId: 'u1' });
    expect(result).toEqual(MEDIA_OBJECT);
    const request = only(calls);
    expect(request.method).toBe('POST');
    expect(request.url.href).toBe(`${BASE_URL}/v1/media`);
    expect(request.headers.get('x-jan-user-id')).toBe('u1');
    expect(request.headers.get('x-media-service-key')).toBe('svc-key');
    expect(request.headers.get('content-type')).toBe('application/json');
    expect(request.headers.get('idempotency-key')).toMatch(/^[0-9a-f-]{36}$/);
    expect(JSON.parse(request.bodyText)).toEqual({
      source: { type: 'data_url', data_url: dataUrl },
      filename: 'x.png',
    });
  });

  it('ingests a remote URL and honours a caller-given idempotency key', async () => {
    const { client, calls } = clientWith(() => json(200, MEDIA_OBJECT));
    await client.media.ingestRemoteUrl('https://example.com/cat.png', {}, { idempotencyKey: 'k-1' });
    const request = only(calls);
    expect(JSON.parse(request.bodyText)).toEqual({ source: { type: 'remote_url', url: 'https://example.com/cat.png' } });
    expect(request.headers.get('idempotency-key')).toBe('k-1');
    expect(request.headers.get('x-jan-user-id')).toBeNull();
  });

  it('prepares an upload without an idempotency key unless given', async () => {
    const prepared = { id: ID, upload_url: `${BASE_URL}/u`, mime_type: 'image/png', expires_in: 60, method: 'PUT', headers: {} };
    const { client, calls } = clientWith(() => json(200, prepared));
    const answer = await client.media.prepareUpload({ mime_type: 'image/png', bytes: 68, method: 'PUT' }, { userId: 'u2' });
    expect(answer).toEqual(prepared);
    const request = only(calls);
    expect(request.url.pathname).toBe('/v1/media/prepare-upload');
    expect(JSON.parse(request.bodyText)).toEqual({ mime_type: 'image/png', bytes: 68, method: 'PUT' });
    expect(request.headers.get('idempotency-key')).toBeNull();
    expect(request.headers.get('x-jan-user-id')).toBe('u2');
  });

  it('completes an upload with an idempotency key', async () => {
    const { client, calls } = clientWith(() => json(200, MEDIA_OBJECT));
    await client.media.complete(ID, { userId: 'u1' });
    const request = only(calls);
    expect(request.method).toBe('POST');
    expect(request.url.pathname).toBe(`/v1/media/${ID}/complete`);
    expect(request.headers.get('idempotency-key')).toBeTruthy();
  });

  it('resolves a payload with mode and keep_unresolved and returns the payload', async () => {
    const payload = { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;${ID}` } }] }] };
    const resolved = { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://127.0.0.1/x' } }] }] };
    const { client, calls } = clientWith(() => json(200, { payload: resolved }));
    const answer = await client.media.resolvePayload(payload, { mode: 'inline', keepUnresolved: true }, { userId: 'u1' });
    expect(answer).toEqual(resolved);
    const request = only(calls);
    expect(request.method).toBe('POST');
    expect(request.url.pathname).toBe('/v1/media/resolve');
    expect(JSON.parse(request.bodyText)).toEqual({ payload, mode: 'inline', keep_unresolved: true });
    expect(request.headers.get('idempotency-key')).toBeNull();
  });

  it('resolves ids', async () => {
    const media = [{ id: ID, presigned_url: 'http://127.0.0.1/p', expires_at: '2030-01-01T00:00:00Z' }];
    const { client, calls } = clientWith(() => json(200, { media }));
    expect(await client.media.resolveIds([ID])).toEqual(media);
    expect(JSON.parse(only(calls).bodyText)).toEqual({ ids: [ID] });
  });

  it('sends raw resolve bodies in both forms and returns the wire answer', async () => {
    const { client, calls } = clientWith((request) =>
      JSON.parse(request.bodyText).ids ? json(200, { media: [] }) : json(200, { payload: { a: 1 } }),
    );
    expect(await client.media.resolve({ payload: { a: 1 }, mode: 'url', keep_unresolved: false })).toEqual({ payload: { a: 1 } });
    expect(await client.media.resolve({ ids: [ID] })).toEqual({ media: [] });
    expect(JSON.parse(calls[0]!.bodyText)).toEqual({ payload: { a: 1 }, mode: 'url', keep_unresolved: false });
    expect(JSON.parse(calls[1]!.bodyText)).toEqual({ ids: [ID] });
    expect(calls.every((c) => c.url.pathname === '/v1/media/resolve' && c.method === 'POST')).toBe(true);
  });

  it('presigns, with ?download=1 only when asked', async () => {
    const presigned = { id: ID, url: 'http://127.0.0.1/p', expires_in: 60, expires_at: '2030-01-01T00:00:00Z' };
    const { client, calls } = clientWith(() => json(200, presigned));
    expect(await client.media.presign(ID)).toEqual(presigned);
    await client.media.presign(ID, { download: true }, { userId: 'u9' });
    expect(calls[0]!.method).toBe('GET');
    expect(calls[0]!.url.href).toBe(`${BASE_URL}/v1/media/${ID}/presign`);
    expect(calls[1]!.url.href).toBe(`${BASE_URL}/v1/media/${ID}/presign?download=1`);
    expect(calls[1]!.headers.get('x-jan-user-id')).toBe('u9');
  });

  it('reads metadata and escapes the id in the path', async () => {
    const { client, calls } = clientWith(() => json(200, { id: ID }));
    await client.media.metadata('jan_a/../b');
    expect(only(calls).url.pathname).toBe('/v1/media/jan_a%2F..%2Fb/metadata');
  });

  it('pins, unpins and deletes', async () => {
    const { client, calls } = clientWith((request) => (request.method === 'DELETE' && !request.url.pathname.endsWith('/pin') ? noContent() : json(200, { id: ID, pinned: request.method === 'PUT' })));
    expect(await client.media.pin(ID, { userId: 'u1' })).toMatchObject({ id: ID, pinned: true });
    expect(await client.media.unpin(ID)).toMatchObject({ id: ID, pinned: false });
    await client.media.delete(ID);
    expect(calls.map((c) => `${c.method} ${c.url.pathname}`)).toEqual([
      `PUT /v1/media/${ID}/pin`,
      `DELETE /v1/media/${ID}/pin`,
      `DELETE /v1/media/${ID}`,
    ]);
    expect(calls[0]!.headers.get('x-jan-user-id')).toBe('u1');
  });

  it('reads usage', async () => {
    const usage = { objects: 3, bytes: 300, quota_objects: 10, quota_bytes: null };
    const { client, calls } = clientWith(() => json(200, usage));
    expect(await client.usage.retrieve({ userId: 'u1' })).toEqual(usage);
    const request = only(calls);
    expect(`${request.method} ${request.url.pathname}`).toBe('GET /v1/usage');
    expect(request.headers.get('x-jan-user-id')).toBe('u1');
  });

  it('reads health', async () => {
    const { client, calls } = clientWith(() => json(200, { status: 'ok' }));
    expect(await client.health()).toEqual({ status: 'ok' });
    expect(only(calls).url.pathname).toBe('/healthz');
  });

  it('rejects a non-JSON success body with UnexpectedResponseError, still a MediaClientError', async () => {
    const { client, calls } = clientWith(() => new Response('<html><body>Welcome to nginx!</body></html>', { status: 200 }));
    const read = client.media.metadata(ID);
    await expect(read).rejects.toBeInstanceOf(UnexpectedResponseError);
    await expect(read).rejects.toBeInstanceOf(MediaClientError);
    await expect(read).rejects.toMatchObject({
      code: 'unexpected_response',
      endpoint: `GET /v1/media/${ID}/metadata`,
      message: `GET /v1/media/${ID}/metadata answered a body that is not JSON ("<html><body>Welcome to nginx!</body></html>"): is baseURL the Jan Media API's root?`,
    });
    expect(calls).toHaveLength(1);
  });
});
