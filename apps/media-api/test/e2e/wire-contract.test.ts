import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { MediaEvents } from '@jan/domain';
import { startTestApp, type TestApp } from '../support/test-app';
import { dataUrl, jpegImage, pngImage, uniqueUser } from '../support/images';
import { departures, resolveRef, responseSchema, type OpenApiDocument } from '../support/openapi-conformance';
import { registeredRoutes } from '../support/registered-routes';

/**
 * Routes the router has that the OpenAPI document leaves out on purpose; docs/api.md (the list
 * before "Authentication") says why. Anything else the router answers must be in the document.
 */
const LEFT_OUT: Array<[RegExp, string]> = [
  [/^(GET|HEAD) \/docs(\/.*)?$/, 'the document itself and its UI'],
  [/^(GET|HEAD) \/metrics$/, 'Prometheus exposition for the scraper, not part of the API'],
  [/^(GET|HEAD) \/v1\/files\/images\/\{name\}$/, "the local backend's signed download URLs: opaque, handed out by the service like S3's and GCS's"],
  [/^PUT \/v1\/uploads\/(uploads|images)\/\{name\}$/, "the local backend's signed upload URLs: opaque, handed out by prepare-upload like S3's and GCS's"],
];

/** The facts of jan-contract.md, over raw HTTP, against PostgreSQL and local disk. */
describe('wire contract (raw HTTP)', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(async () => {
    await app?.close();
  });

  const ingest = (user: string, body: unknown) => app.call('/v1/media', { method: 'POST', user, body: JSON.stringify(body) });

  it('answers /healthz and /readyz', async () => {
    const health = await fetch(`${app.baseUrl}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json() as any).toEqual({ status: 'ok' });
    const ready = await fetch(`${app.baseUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json() as any).toMatchObject({ status: 'ok', info: { database: { status: 'up' }, storage: { status: 'up' } } });
  });

  it('refuses calls without credentials or with a wrong key (401), with code and request id', async () => {
    const none = await app.call('/v1/media/resolve', { method: 'POST', key: null, body: '{"payload":{}}' });
    expect(none.status).toBe(401);
    const body = await none.json() as any;
    expect(body).toMatchObject({ code: 'unauthorized', error: expect.any(String), request_id: expect.any(String) });
    expect(none.headers.get('x-request-id')).toBe(body.request_id);
    const wrong = await app.call('/v1/media/resolve', { method: 'POST', key: 'not-the-key', body: '{"payload":{}}' });
    expect(wrong.status).toBe(401);
  });

  it('ingests a PNG data URL, dedupes it per owner, and keeps owners apart', async () => {
    const alice = uniqueUser('alice');
    const png = await pngImage(1);
    const first = await ingest(alice, { source: { type: 'data_url', data_url: dataUrl(png) }, filename: 'x.png', user_id: alice });
    expect(first.status).toBe(200);
    const a = await first.json() as any;
    expect(a).toMatchObject({ mime: 'image/png', bytes: png.length, deduped: false });
    expect(a.id).toMatch(/^jan_[a-z0-9]+$/);
    expect(a.url).toMatch(/^https?:\/\//);
    expect(a.presigned_url).toBe(a.url);

    const second = await (await ingest(alice, { source: { type: 'data_url', data_url: dataUrl(png) }, user_id: alice })).json() as any;
    expect(second).toMatchObject({ id: a.id, deduped: true });

    const bob = uniqueUser('bob');
    const other = await (await ingest(bob, { source: { type: 'data_url', data_url: dataUrl(png) } })).json() as any;
    expect(other.deduped).toBe(false);
    expect(other.id).not.toBe(a.id);
  });

  it('accepts source type aliases case-insensitively and refuses unknown ones with 400 "unknown source type"', async () => {
    const user = uniqueUser();
    for (const [i, type] of ['DATA_URL', 'datauri', 'DataUrl'].entries()) {
      const res = await ingest(user, { source: { type, data_url: dataUrl(await pngImage(100 + i)) } });
      expect(res.status).toBe(200);
    }
    const bad = await ingest(user, { source: { type: 'ftp', url: 'ftp://x' } });
    expect(bad.status).toBe(400);
    const body = await bad.json() as any;
    expect(body.error).toContain('unknown source type');
    expect(body.code).toBe('unknown_source_type');
  });

  it('refuses data URLs that are not base64, and bodies that are not JSON', async () => {
    const user = uniqueUser();
    const plain = await ingest(user, { source: { type: 'data_url', data_url: 'data:image/png,notbase64' } });
    expect(plain.status).toBe(400);
    expect((await plain.json() as any).code).toBe('invalid_data_url');
    const broken = await app.call('/v1/media', { method: 'POST', user, body: '{"source":' });
    expect(broken.status).toBe(400);
    expect((await broken.json() as any).code).toBe('invalid_request');
  });

  it('streams identical bytes back with the stored type and safe headers', async () => {
    const user = uniqueUser();
    const jpeg = await jpegImage(7);
    const { id } = await (await ingest(user, { source: { type: 'data_url', data_url: dataUrl(jpeg, 'image/jpeg') } })).json() as any;
    const res = await app.call(`/v1/media/${id}`, { user });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    expect(res.headers.get('content-length')).toBe(String(jpeg.length));
    expect(res.headers.get('etag')).toMatch(/^"[0-9a-f]{64}"$/);
    expect(res.headers.get('cache-control')).toContain('private');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(Buffer.from(await res.arrayBuffer())).toEqual(jpeg);

    const notModified = await app.call(`/v1/media/${id}`, { user, headers: { 'if-none-match': res.headers.get('etag')! } });
    expect(notModified.status).toBe(304);
    const partial = await app.call(`/v1/media/${id}`, { user, headers: { range: 'bytes=0-9' } });
    expect(partial.status).toBe(206);
    expect(Buffer.from(await partial.arrayBuffer())).toEqual(jpeg.subarray(0, 10));

    // Conditional requests as RFC 9110 has them: weak and * tags match, If-Range guards Range.
    const etag = res.headers.get('etag')!;
    for (const tag of [`W/${etag}`, '*', `"other", ${etag}`]) {
      expect((await app.call(`/v1/media/${id}`, { user, headers: { 'if-none-match': tag } })).status).toBe(304);
    }
    expect((await app.call(`/v1/media/${id}`, { user, headers: { 'if-none-match': '"other"' } })).status).toBe(200);
    const stale = await app.call(`/v1/media/${id}`, { user, headers: { range: 'bytes=0-9', 'if-range': '"other"' } });
    expect(stale.status).toBe(200);
    expect(Buffer.from(await stale.arrayBuffer())).toEqual(jpeg);
    expect((await app.call(`/v1/media/${id}`, { user, headers: { range: 'bytes=0-9', 'if-range': etag } })).status).toBe(206);
    const outside = await app.call(`/v1/media/${id}`, { user, headers: { range: `bytes=${jpeg.length}-` } });
    expect(outside.status).toBe(416);
    expect(outside.headers.get('content-range')).toBe(`bytes */${jpeg.length}`);
    expect(await outside.json()).toMatchObject({ code: 'range_not_satisfiable', request_id: outside.headers.get('x-request-id') });
    expect((await app.call(`/v1/media/${id}`, { user, headers: { range: `bytes=${jpeg.length + 5}-${jpeg.length + 9}` } })).status).toBe(416);

    // A Range that is not one valid byte range is ignored, a reversed one (RFC 9110 §14.1.1) too.
    for (const range of ['bytes=9-3', `bytes=${jpeg.length + 9}-3`, 'bytes=abc', 'items=0-3', 'bytes=0-1,3-4']) {
      const ignored = await app.call(`/v1/media/${id}`, { user, headers: { range } });
      expect({ range, status: ignored.status, contentRange: ignored.headers.get('content-range') }).toEqual({ range, status: 200, contentRange: null });
      expect(Buffer.from(await ignored.arrayBuffer())).toEqual(jpeg);
    }
  });

  it('answers 404 with an error for unknown, malformed and foreign ids on every read path', async () => {
    const owner = uniqueUser();
    const { id } = await (await ingest(owner, { source: { type: 'data_url', data_url: dataUrl(await pngImage(3)) } })).json() as any;
    const stranger = uniqueUser();
    const paths = ['/v1/media/jan_nonexistent123', '/v1/media/jan_01hqr8v9k2x3f4g5h6j7k8m9n0', `/v1/media/${id}`, `/v1/media/${id}/presign`, '/v1/media/jan_nonexistent123/presign'];
    const bodies: string[] = [];
    for (const path of paths) {
      const res = await app.call(path, { user: stranger });
      expect(res.status).toBe(404);
      const body = await res.json() as any;
      expect(body).toMatchObject({ code: 'media_not_found', error: 'media not found' });
      bodies.push(JSON.stringify({ ...body, request_id: undefined }));
    }
    expect(new Set(bodies).size).toBe(1);

    // URLs the router refuses before any handler answer in the same shape, with a request id.
    for (const path of [`/v1/media/${'a'.repeat(600)}`, '/v1/media/%E0%A4%A']) {
      const res = await app.call(path, { user: stranger });
      expect(res.status).toBe(400);
      const body = (await res.json()) as any;
      expect(body).toMatchObject({ code: 'invalid_request', request_id: expect.any(String) });
      expect(res.headers.get('x-request-id')).toBe(body.request_id);
    }
    expect((await app.call(`/v1/media/${'a'.repeat(200)}`, { user: stranger })).status).toBe(404);
  });

  it('answers 405 with Allow for a known path asked with another method, 404 for an unknown one', async () => {
    for (const [method, path, allow] of [
      ['POST', '/healthz', 'GET, HEAD'],
      ['PATCH', '/v1/media/jan_01hqr8v9k2x3f4g5h6j7k8m9n0', 'DELETE, GET, HEAD'],
      ['GET', '/v1/media/jan_01hqr8v9k2x3f4g5h6j7k8m9n0/complete', 'POST'],
    ] as const) {
      const res = await app.call(path, { method, user: uniqueUser() });
      expect(res.status).toBe(405);
      expect(res.headers.get('allow')).toBe(allow);
      expect(await res.json()).toMatchObject({ code: 'method_not_allowed', request_id: expect.any(String) });
    }
    const unknown = await app.call('/v1/nothing-here', { method: 'POST', user: uniqueUser() });
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ code: 'route_not_found' });
    // Admin routes do not exist for anyone else, whatever the method.
    const admin = await app.call('/v1/admin/usage', { method: 'POST', user: uniqueUser() });
    expect(admin.status).toBe(404);
    expect(admin.headers.get('allow')).toBeNull();
  });

  it('refuses a JSON body declared in a charset other than UTF-8 with 415, on parsed and raw routes alike', async () => {
    for (const path of ['/v1/media', '/v1/media/resolve']) {
      const res = await app.call(path, {
        method: 'POST',
        user: uniqueUser(),
        headers: { 'content-type': 'application/json; charset=utf-16le' },
        body: Buffer.from('{"payload":{"a":1}}', 'utf16le'),
      });
      expect(res.status).toBe(415);
      expect(await res.json()).toMatchObject({ code: 'unsupported_media_type', details: { charset: 'utf-16le' } });
    }
  });

  it('answers requests Node refuses before routing (headers over 16 KiB, a malformed request line) with a code and a request id', async () => {
    const raw = (request: string) =>
      new Promise<{ status: number; headers: string; body: string }>((resolve, reject) => {
        const url = new URL(app.baseUrl);
        const socket = connect(Number(url.port), url.hostname);
        let answer = '';
        socket.on('data', (chunk) => (answer += chunk.toString('utf8')));
        socket.on('error', reject);
        socket.on('close', () => {
          const [head, body = ''] = answer.split('\r\n\r\n');
          resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head!)?.[1]), headers: head!, body });
        });
        socket.write(request);
      });
    const big = await raw(`GET /v1/media/jan_01hqr8v9k2x3f4g5h6j7k8m9n0 HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(big.status).toBe(431);
    const bigBody = JSON.parse(big.body) as { code: string; request_id: string };
    expect(bigBody).toMatchObject({ code: 'headers_too_large', error: expect.any(String), request_id: expect.any(String) });
    expect(big.headers.toLowerCase()).toContain(`x-request-id: ${bigBody.request_id}`);
    const malformed = await raw('GET /v1/media HTTP/9.9 nonsense\r\n\r\n');
    expect(malformed.status).toBe(400);
    expect(JSON.parse(malformed.body)).toMatchObject({ code: 'invalid_request', request_id: expect.any(String) });
  });

  it('presigns URLs that serve the bytes without credentials and refuse tampering', async () => {
    const user = uniqueUser();
    const png = await pngImage(4);
    const { id } = await (await ingest(user, { source: { type: 'data_url', data_url: dataUrl(png) } })).json() as any;
    const res = await app.call(`/v1/media/${id}/presign`, { user });
    expect(res.status).toBe(200);
    const presigned = await res.json() as any;
    expect(presigned).toMatchObject({ id, url: expect.stringMatching(/^http:\/\//), expires_in: expect.any(Number) });
    expect(presigned.expires_in).toBeGreaterThan(0);

    const open = await fetch(presigned.url);
    expect(open.status).toBe(200);
    expect(open.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await open.arrayBuffer())).toEqual(png);

    const url = new URL(presigned.url);
    url.searchParams.set('expires', String(Number(url.searchParams.get('expires')) + 3600));
    const tampered = await fetch(url);
    expect(tampered.status).toBe(403);
    expect((await tampered.json() as any).code).toBe('invalid_signature');
    const otherKey = new URL(presigned.url);
    otherKey.pathname = otherKey.pathname.replace(/jan_[0-9a-z]+/, 'jan_01hqr8v9k2x3f4g5h6j7k8m9n0');
    expect((await fetch(otherKey)).status).toBe(403);
  });

  it("names a download's file in a Content-Disposition that RFC 8187 parsers accept, whatever its characters", async () => {
    // encodeURIComponent leaves ' ( ) * as they are, which filename*'s value may not hold: a
    // strict parser (the content-disposition package) refused the whole header for "it's.png".
    const attrChars = /^UTF-8''(?:[A-Za-z0-9!#$&+.^_`|~-]|%[0-9A-F]{2})*$/;
    for (const filename of ["it's (1)*.png", 'naïve ☃.png', 'a;b=c 100%.png']) {
      const user = uniqueUser();
      const png = await pngImage(90);
      const { id } = await (await ingest(user, { source: { type: 'data_url', data_url: dataUrl(png) }, filename })).json() as any;
      const served = (await app.call(`/v1/media/${id}?download=1`, { user })).headers.get('content-disposition')!;
      const signed = await (await app.call(`/v1/media/${id}/presign?download=1`, { user })).json() as any;
      const fromUrl = (await fetch(signed.url)).headers.get('content-disposition')!;
      for (const header of [served, fromUrl]) {
        const extended = /; filename\*=(\S+)$/.exec(header)?.[1];
        expect({ filename, extended }).toEqual({ filename, extended: expect.stringMatching(attrChars) });
        expect(decodeURIComponent(extended!.slice("UTF-8''".length))).toBe(filename);
      }
    }
  });

  it('refuses a JSON body nested 10,000 levels deep with 400 invalid_request on every parsed JSON route, never 500', async () => {
    // class-transformer walks the body recursively: prepare-upload overflowed the stack (500).
    const deep = (open: string, close: string) => `${open.repeat(10_000)}1${close.repeat(10_000)}`;
    for (const nested of [deep('[', ']'), deep('{"a":', '}')]) {
      for (const [path, body] of [
        ['/v1/media/prepare-upload', `{"mime_type":"image/png","x":${nested}}`],
        ['/v1/media', `{"source":{"type":"data_url","data_url":"data:image/png;base64,AAAA"},"x":${nested}}`],
      ]) {
        const res = await app.call(path, { method: 'POST', user: uniqueUser(), body });
        expect({ path, status: res.status }).toEqual({ path, status: 400 });
        expect(await res.json()).toMatchObject({ code: 'invalid_request', error: expect.stringContaining('deep') });
      }
    }
  });

  it('resolves both placeholder forms in any JSON into URLs that serve the bytes', async () => {
    const user = uniqueUser();
    const png = await pngImage(5);
    const { id } = await (await ingest(user, { source: { type: 'data_url', data_url: dataUrl(png) } })).json() as any;
    const payload = {
      model: 'x',
      messages: [
        { role: 'user', content: [{ type: 'text', text: 'hi' }, { type: 'image_url', image_url: { url: `data:image/png;${id}` } }] },
        { role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${id}` } }] },
      ],
      temperature: 0.7,
      unicode: 'ünïcödé ✓',
    };
    const res = await app.call('/v1/media/resolve', { method: 'POST', user, body: JSON.stringify({ payload }) });
    expect(res.status).toBe(200);
    expect(res.headers.get('server-timing')).toMatch(/lookup;dur=/);
    const out = (await res.json() as any).payload;
    const urls = [out.messages[0].content[1].image_url.url, out.messages[1].content[0].image_url.url];
    for (const url of urls) {
      expect(url).toMatch(/^http:\/\//);
      expect(Buffer.from(await (await fetch(url)).arrayBuffer())).toEqual(png);
    }
    expect(out.unicode).toBe(payload.unicode);
    expect(out.temperature).toBe(0.7);

    const plain = { messages: [{ role: 'user', content: 'no images here' }], n: [1, 2, { x: null }] };
    const same = await (await app.call('/v1/media/resolve', { method: 'POST', user, body: JSON.stringify({ payload: plain }) })).json() as any;
    expect(same).toEqual({ payload: plain });

    const ids = await (await app.call('/v1/media/resolve', { method: 'POST', user, body: JSON.stringify({ ids: [id] }) })).json() as any;
    expect(ids.media).toEqual([{ id, presigned_url: expect.stringMatching(/^http/), url: expect.any(String), expires_at: expect.any(String) }]);

    const missing = await app.call('/v1/media/resolve', { method: 'POST', user, body: JSON.stringify({ payload: { u: 'data:image/png;jan_01hqr8v9k2x3f4g5h6j7k8m9n0' } }) });
    expect(missing.status).toBe(404);
    expect((await missing.json() as any).details).toEqual({ ids: ['jan_01hqr8v9k2x3f4g5h6j7k8m9n0'] });
  });

  it('runs a direct upload: prepare, PUT to the signed URL with plain HTTP, complete, GET', async () => {
    const user = uniqueUser();
    const png = await pngImage(6);
    const prepared = await (
      await app.call('/v1/media/prepare-upload', { method: 'POST', user, body: JSON.stringify({ content_type: 'image/png', user_id: user }) })
    ).json() as any;
    expect(prepared).toMatchObject({ id: expect.stringMatching(/^jan_[a-z0-9]+$/), mime_type: 'image/png', upload_url: expect.stringMatching(/^http:\/\//) });
    expect(prepared.expires_in).toBeGreaterThan(0);

    expect((await app.call(`/v1/media/${prepared.id}`, { user })).status).toBe(404);
    const put = await fetch(prepared.upload_url, { method: 'PUT', headers: { 'content-type': 'image/png' }, body: png });
    expect(put.status).toBe(200);
    const reuse = await fetch(prepared.upload_url, { method: 'PUT', headers: { 'content-type': 'image/png' }, body: png });
    expect(reuse.status).toBe(403);

    const completed = await app.call(`/v1/media/${prepared.id}/complete`, { method: 'POST', user });
    expect(completed.status).toBe(200);
    expect(await completed.json() as any).toMatchObject({ id: prepared.id, bytes: png.length, deduped: false });
    const got = await app.call(`/v1/media/${prepared.id}`, { user });
    expect(Buffer.from(await got.arrayBuffer())).toEqual(png);
  });

  it('serves its OpenAPI document', async () => {
    const res = await fetch(`${app.baseUrl}/docs/openapi.json`);
    expect(res.status).toBe(200);
    const doc = await res.json() as any;
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/media', '/v1/media/resolve', '/v1/media/{id}', '/v1/media/prepare-upload']));
    // Both hot routes read their bodies by hand; the document still describes them.
    const bodyRef = (path: string) => doc.paths[path].post.requestBody.content['application/json'].schema.$ref;
    expect(bodyRef('/v1/media')).toBe('#/components/schemas/IngestMediaDto');
    expect(bodyRef('/v1/media/resolve')).toBe('#/components/schemas/ResolveMediaDto');
    expect(Object.keys(doc.components.schemas.IngestMediaDto.properties).sort()).toEqual(['filename', 'source', 'user_id']);
    // Every refusal is documented too, with the one error body.
    const error = { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } };
    expect(doc.paths['/v1/media'].post.responses).toMatchObject({ '200': expect.anything(), '400': { content: error }, '401': { content: error }, '413': { content: error }, '415': { content: error }, '422': { content: error }, '429': { content: error }, '503': { content: error } });
    expect(Object.keys(doc.paths['/v1/media/{id}'].get.responses).sort()).toEqual(['200', '206', '304', '400', '401', '404', '416', '429', '503']);
    // Resolve answers 415 to a body that is not application/json: documented, like the routes that ingest.
    expect(Object.keys(doc.paths['/v1/media/resolve'].post.responses).sort()).toEqual(['200', '400', '401', '404', '413', '415', '429', '503']);
    const notJson = await app.call('/v1/media/resolve', { method: 'POST', user: uniqueUser(), body: '{"payload":{}}', headers: { 'content-type': 'application/xml' } });
    expect(notJson.status).toBe(415);
    expect(await notJson.json()).toMatchObject({ code: 'unsupported_media_type' });
    expect(doc.components.schemas.Error.properties.code.enum).toEqual(expect.arrayContaining(['media_not_found', 'quota_exceeded', 'range_not_satisfiable', 'route_not_found']));
    // The headers a client acts on: when to retry, and the size behind a 416.
    expect(Object.keys(doc.paths['/v1/media'].post.responses['429'].headers).sort()).toEqual(['RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset', 'Retry-After']);
    expect(Object.keys(doc.paths['/v1/media/{id}'].get.responses['416'].headers)).toEqual(['Content-Range']);
    // Without the admin key the admin routes answer 404 route_not_found.
    for (const [path, method] of [['/v1/admin/media', 'get'], ['/v1/admin/media/purge', 'post'], ['/v1/admin/usage', 'get']] as const) {
      expect(doc.paths[path][method].responses['404']).toMatchObject({ description: expect.stringContaining('route_not_found'), content: error });
    }
    const ui = await fetch(`${app.baseUrl}/docs`);
    expect(ui.status).toBe(200);
    expect(await ui.text()).toContain('swagger');
  });

  it('documents the body of every success that has one, and GET /v1/media/{id} in full', async () => {
    const doc = (await (await fetch(`${app.baseUrl}/docs/openapi.json`)).json()) as OpenApiDocument;
    // 204 (DELETE) and 304 are the only successes without a body; HEAD answers have none at all.
    const noBody = new Set(['204', '304']);
    const gaps: string[] = [];
    let routes = 0;
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(item)) {
        routes++;
        const successes = Object.entries(operation.responses).filter(([status]) => /^[23]\d\d$/.test(status));
        if (!successes.length) gaps.push(`${method.toUpperCase()} ${path}: no success documented`);
        for (const [status, response] of successes) {
          const route = `${method.toUpperCase()} ${path} ${status}`;
          if (!response.description) gaps.push(`${route}: no description`);
          const schemas = Object.values(response.content ?? {}).map((media) => media.schema);
          if (noBody.has(status) || method === 'head') {
            if (schemas.length) gaps.push(`${route}: documents a body it never sends`);
            continue;
          }
          if (!schemas.length) gaps.push(`${route}: no content`);
          for (const schema of schemas) {
            if (!schema) gaps.push(`${route}: content without a schema`);
            else if (Object.keys(resolveRef(doc, schema)).length === 0) gaps.push(`${route}: an empty schema`);
          }
        }
      }
    }
    expect(gaps).toEqual([]);
    expect(routes).toBeGreaterThanOrEqual(19);

    // Counts, sizes and seconds are integers; timestamps are date-times.
    const loose: string[] = [];
    for (const [name, schema] of Object.entries(doc.components.schemas)) {
      for (const [key, property] of Object.entries(schema.properties ?? {})) {
        if (property.type === 'number') loose.push(`${name}.${key} is a number`);
        if (/_(at|until)$/.test(key) && property.format !== 'date-time') loose.push(`${name}.${key} is not a date-time`);
      }
    }
    expect(loose).toEqual([]);

    const download = doc.paths['/v1/media/{id}'].get;
    const params = (route: { parameters?: { name: string; in: string }[] }) => (route.parameters ?? []).map((p) => `${p.in}:${p.name}`);
    expect(params(download)).toEqual(expect.arrayContaining(['query:download', 'header:Range', 'header:If-None-Match', 'header:If-Range']));
    expect(params(doc.paths['/v1/media/{id}/presign'].get)).toContain('query:download');
    const binary = { schema: { type: 'string', format: 'binary' } };
    expect(download.responses['200'].content).toEqual({ 'image/*': binary, 'application/json': { schema: { $ref: '#/components/schemas/MediaUrlResponseDto' } } });
    expect(download.responses['206'].content).toEqual({ 'image/*': binary });
    expect(download.responses['304'].content).toBeUndefined();
    expect(doc.paths['/v1/media/{id}'].delete.responses['204'].content).toBeUndefined();
  });

  it('documents every route the router registers, HEAD included, except those docs/api.md says it leaves out', async () => {
    const doc = (await (await fetch(`${app.baseUrl}/docs/openapi.json`)).json()) as OpenApiDocument;
    const documented = Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`));
    const registered = registeredRoutes(app.running.app.getHttpAdapter().getInstance());
    // The reading of the router is not empty-handed: the routes every client uses are there.
    expect(registered).toEqual(expect.arrayContaining(['GET /v1/media/{id}', 'HEAD /v1/media/{id}', 'POST /v1/media/resolve', 'GET /healthz', 'HEAD /v1/files/images/{name}']));
    const leftOut = (route: string) => LEFT_OUT.some(([pattern]) => pattern.test(route));
    expect(registered.filter((route) => !leftOut(route) && !documented.includes(route))).toEqual([]);
    // Nor does the document name a route the router lacks, or leave out one it has.
    expect(documented.filter((route) => !registered.includes(route))).toEqual([]);
    expect(documented.filter(leftOut)).toEqual([]);
    // Every exclusion still matches a route: the list cannot outlive what it excuses.
    expect(LEFT_OUT.filter(([pattern]) => !registered.some((route) => pattern.test(route))).map(([, why]) => why)).toEqual([]);

    // HEAD answers as GET does, without a body, a range or its 416 (ranges are for GET).
    const head = doc.paths['/v1/media/{id}'].head!;
    expect(Object.keys(head.responses).sort()).toEqual(['200', '304', '400', '401', '404', '429', '503']);
    expect(Object.values(doc.paths).flatMap((item) => Object.values(item.head?.responses ?? {})).filter((response) => response.content)).toEqual([]);
    expect((head.parameters ?? []).map((p) => `${p.in}:${p.name}`)).toEqual(expect.arrayContaining(['path:id', 'query:download', 'header:If-None-Match']));
    expect((head.parameters ?? []).map((p) => p.name)).not.toContain('Range');
  });

  it('answers HEAD on a media id with the headers of its GET and no body, and an unknown id with a bodiless 404', async () => {
    const user = uniqueUser('head');
    const png = await pngImage(7);
    const { id } = (await (await ingest(user, { source: { type: 'data_url', data_url: dataUrl(png) } })).json()) as { id: string };
    const got = await app.call(`/v1/media/${id}`, { user });
    const head = await app.call(`/v1/media/${id}`, { method: 'HEAD', user, headers: { range: 'bytes=0-1' } });
    expect(head.status).toBe(200);
    for (const name of ['content-type', 'content-length', 'etag', 'cache-control']) expect({ name, value: head.headers.get(name) }).toEqual({ name, value: got.headers.get(name) });
    expect(Buffer.from(await head.arrayBuffer()).length).toBe(0);
    const unknown = await app.call('/v1/media/jan_00000000000000000000000000', { method: 'HEAD', user });
    expect(unknown.status).toBe(404);
  });
});

/**
 * Real answers of every JSON route against the schema the document gives for them: a key the
 * document does not name, a required one missing, or a value of another type fails here, so the
 * document cannot drift from the code unnoticed.
 */
describe('the OpenAPI document against real answers', () => {
  const ADMIN_KEY = 'e2e-admin-key-openapi-0123456789';
  const GATEWAY_KEY = 'e2e-gateway-key-openapi-01234567';
  let app: TestApp;
  let doc: OpenApiDocument;
  /** A remote image server on loopback that never answers, for the fetch timeout. */
  let stalled: Server;

  beforeAll(async () => {
    stalled = createServer(() => undefined);
    await new Promise<void>((resolve) => stalled.listen(0, '127.0.0.1', resolve));
    // Proxying off: GET /v1/media/{id} answers its JSON form. One quota set, the other unlimited (null).
    app = await startTestApp({
      env: {
        MEDIA_ADMIN_KEY: ADMIN_KEY,
        MEDIA_API_KEYS: `${GATEWAY_KEY}:service:kong`,
        MEDIA_PROXY_DOWNLOAD: 'false',
        MEDIA_QUOTA_OBJECTS: '1000',
        MEDIA_REMOTE_FETCH_ALLOW_CIDRS: '127.0.0.1/32',
        MEDIA_REMOTE_FETCH_TIMEOUT: '1s',
      },
    });
    doc = (await (await fetch(`${app.baseUrl}/docs/openapi.json`)).json()) as OpenApiDocument;
  });
  afterAll(async () => {
    await app?.close();
    stalled?.closeAllConnections();
    await new Promise((resolve) => stalled?.close(resolve));
  });

  /** The error answer's code, after checking that the document lists its status, with the error body, for `method path`. */
  async function documentedError(method: string, path: string, res: Response, status: number): Promise<string> {
    const body = (await res.json()) as { code: string };
    const route = `${method.toUpperCase()} ${path}`;
    expect({ route, status: res.status }).toEqual({ route, status });
    const response = (doc.paths[path] as any)[method].responses[String(status)];
    expect({ route, status, documented: response?.content?.['application/json']?.schema }).toEqual({ route, status, documented: { $ref: '#/components/schemas/Error' } });
    expect(doc.components.schemas.Error.properties!.code.enum).toContain(body.code);
    return body.code;
  }

  it('documents the refusals pin, unpin and a remote fetch really answer with', async () => {
    const user = uniqueUser('openapi-errors');
    const prepared = (await (await app.call('/v1/media/prepare-upload', { method: 'POST', user, body: JSON.stringify({ mime_type: 'image/png' }) })).json()) as any;
    expect(await documentedError('put', '/v1/media/{id}/pin', await app.call(`/v1/media/${prepared.id}/pin`, { method: 'PUT', user }), 409)).toBe('media_not_ready');
    expect(await documentedError('delete', '/v1/media/{id}/pin', await app.call(`/v1/media/${prepared.id}/pin`, { method: 'DELETE', user }), 409)).toBe('media_not_ready');
    const { port } = stalled.address() as AddressInfo;
    const timedOut = await app.call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'remote_url', url: `http://127.0.0.1:${port}/cat.png` } }) });
    expect(await documentedError('post', '/v1/media', timedOut, 504)).toBe('remote_fetch_timeout');
  });

  it('refuses an image or octet-stream body on a JSON route with the documented 415 and stays up', async () => {
    // Only the local backend's upload URLs read raw bodies; a JSON route handed one crashed the process.
    const user = uniqueUser('openapi-raw-body');
    const png = await pngImage(921);
    const { id } = (await (await app.call('/v1/media/prepare-upload', { method: 'POST', user, body: JSON.stringify({ mime_type: 'image/png' }) })).json()) as any;
    const routes = [
      ['post', '/v1/media', '/v1/media'],
      ['post', '/v1/media/prepare-upload', '/v1/media/prepare-upload'],
      ['post', '/v1/media/resolve', '/v1/media/resolve'],
      ['post', '/v1/media/upload', '/v1/media/upload'],
      ['post', '/v1/media/{id}/complete', `/v1/media/${id}/complete`],
      // Routes that read no body refuse one of a type they do not read as well.
      ['put', '/v1/media/{id}/pin', `/v1/media/${id}/pin`],
      ['delete', '/v1/media/{id}/pin', `/v1/media/${id}/pin`],
      ['delete', '/v1/media/{id}', `/v1/media/${id}`],
      ['post', '/v1/admin/media/purge', '/v1/admin/media/purge'],
      ['post', '/v1/admin/media/{id}/reissue', `/v1/admin/media/${id}/reissue`],
    ] as const;
    for (const type of ['image/png', 'application/octet-stream']) {
      for (const [method, path, url] of routes) {
        const admin = path.startsWith('/v1/admin');
        const headers = { 'content-type': type, ...(admin ? { 'x-media-admin-key': ADMIN_KEY } : {}) };
        const res = await app.call(url, { method: method.toUpperCase(), ...(admin ? { key: null } : { user }), headers, body: png });
        expect({ type, route: path, code: await documentedError(method, path, res, 415) }).toEqual({ type, route: path, code: 'unsupported_media_type' });
      }
    }
    // No route, or not this method: the same 404 and 405 as any other body gets.
    const elsewhere = async (url: string) => (await app.call(url, { method: 'POST', user, headers: { 'content-type': 'image/png' }, body: png })).json();
    expect(await elsewhere('/v1/nothing')).toMatchObject({ code: 'route_not_found' });
    expect(await elsewhere(`/v1/media/${id}`)).toMatchObject({ code: 'method_not_allowed' });
    expect((await fetch(`${app.baseUrl}/healthz`)).status).toBe(200);
  });

  it('reads an empty application/json body as none on the routes that take no body or an optional one, and refuses it where a body is needed', async () => {
    // Many HTTP clients (Go's, llm-api's) send Content-Type: application/json with every POST.
    const user = uniqueUser('empty-json');
    const json = { 'content-type': 'application/json' };
    const prepared = (await (await app.call('/v1/media/prepare-upload', { method: 'POST', user, body: JSON.stringify({ mime_type: 'image/png' }) })).json()) as any;
    expect((await fetch(prepared.upload_url, { method: 'PUT', headers: { 'content-type': 'image/png' }, body: await pngImage(922) })).status).toBe(200);
    const completed = await app.call(`/v1/media/${prepared.id}/complete`, { method: 'POST', user, headers: json, body: '' });
    expect({ status: completed.status, body: await completed.json() }).toMatchObject({ status: 200, body: { id: prepared.id, status: 'ready' } });
    const pinned = await app.call(`/v1/media/${prepared.id}/pin`, { method: 'PUT', user, headers: json, body: '' });
    expect({ status: pinned.status, body: await pinned.json() }).toMatchObject({ status: 200, body: { pinned: true } });
    const unpinned = await app.call(`/v1/media/${prepared.id}/pin`, { method: 'DELETE', user, headers: json, body: '' });
    expect({ status: unpinned.status, body: await unpinned.json() }).toMatchObject({ status: 200, body: { pinned: false } });
    expect((await app.call(`/v1/media/${prepared.id}`, { method: 'DELETE', user, headers: json, body: '' })).status).toBe(204);
    expect((await app.call(`/v1/media/${prepared.id}`, { user })).status).toBe(404);

    // An admin reissue's body is optional as a whole: an empty one is none too, as no body is.
    const live = (await (await app.call('/v1/media/prepare-upload', { method: 'POST', user, body: JSON.stringify({ mime_type: 'image/png' }) })).json()) as any;
    expect((await fetch(live.upload_url, { method: 'PUT', headers: { 'content-type': 'image/png' }, body: await pngImage(923) })).status).toBe(200);
    expect((await app.call(`/v1/media/${live.id}/complete`, { method: 'POST', user })).status).toBe(200);
    for (const sent of [{}, { headers: json, body: '' }]) {
      const reissued = await app.call(`/v1/admin/media/${live.id}/reissue`, { method: 'POST', key: null, headers: { 'x-media-admin-key': ADMIN_KEY, ...sent.headers }, body: sent.body });
      expect({ sent, status: reissued.status, body: await reissued.json() }).toMatchObject({ sent, status: 200, body: { id: live.id, expires_in: 900 } });
    }

    for (const url of ['/v1/media', '/v1/media/prepare-upload', '/v1/media/resolve', '/v1/admin/media/purge']) {
      const admin = url.startsWith('/v1/admin') ? { key: null, headers: { ...json, 'x-media-admin-key': ADMIN_KEY } } : { user, headers: json };
      const refused = await app.call(url, { method: 'POST', ...admin, body: '' });
      expect({ url, status: refused.status, code: ((await refused.json()) as any).code }).toEqual({ url, status: 400, code: 'invalid_request' });
    }
  });

  it('names every credential a route accepts, and each one works there', async () => {
    const schemes = (path: string, method: string) => ((doc.paths[path] as any)[method].security as Record<string, string[]>[]).map((s) => Object.keys(s).join('+')).sort();
    for (const [path, method] of [['/v1/media', 'post'], ['/v1/media/{id}', 'get'], ['/v1/media/resolve', 'post'], ['/v1/usage', 'get']] as const) {
      expect({ path, schemes: schemes(path, method) }).toEqual({ path, schemes: ['admin-key', 'api-key', 'bearer', 'service-key'] });
    }
    for (const [path, method] of [['/v1/admin/media', 'get'], ['/v1/admin/media/purge', 'post'], ['/v1/admin/media/{id}/reissue', 'post']] as const) {
      expect({ path, schemes: schemes(path, method) }).toEqual({ path, schemes: ['admin-key', 'api-key', 'bearer'] });
    }
    // The API-key and admin-key schemes really authenticate the media routes (bearer: access-matrix.test.ts).
    const user = uniqueUser('openapi-schemes');
    const body = JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(await pngImage(920)) }, user_id: user });
    for (const [header, value] of [['x-api-key', GATEWAY_KEY], ['x-media-admin-key', ADMIN_KEY]]) {
      const res = await app.call('/v1/media', { method: 'POST', key: null, body, headers: { [header]: value, 'x-jan-user-id': user } });
      expect({ header, status: res.status }).toEqual({ header, status: 200 });
    }
  });

  it('lets a signed URL be cached no longer than it is valid', async () => {
    const user = uniqueUser('openapi-cache');
    const ingested = (await (await app.call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(await pngImage(921)) } }) })).json()) as any;
    const cacheOf = async (url: string) => (await fetch(url)).headers.get('cache-control');
    expect(await cacheOf(ingested.url)).toBe('private, max-age=300');
    const short = (await (await admin(`/v1/admin/media/${ingested.id}/reissue`, { method: 'POST', body: JSON.stringify({ ttl_seconds: 30 }) })).json()) as any;
    const maxAge = Number(/^private, max-age=(\d+)$/.exec((await cacheOf(short.url)) ?? '')?.[1]);
    expect(maxAge).toBeGreaterThanOrEqual(28);
    expect(maxAge).toBeLessThanOrEqual(30);
  });

  const admin = (path: string, init: RequestInit = {}) =>
    fetch(app.baseUrl + path, { ...init, headers: { 'x-media-admin-key': ADMIN_KEY, 'content-type': 'application/json', ...init.headers } });

  /** The answer's JSON, after checking it against the document's schema for `method path status`. */
  async function documented(method: string, path: string, res: Response, status = '200'): Promise<any> {
    const body = (await res.json()) as unknown;
    expect({ route: `${method.toUpperCase()} ${path}`, status: res.status }).toEqual({ route: `${method.toUpperCase()} ${path}`, status: Number(status) });
    expect({ route: `${method.toUpperCase()} ${path}`, departures: departures(doc, responseSchema(doc, method, path, status), body) }).toEqual({
      route: `${method.toUpperCase()} ${path}`,
      departures: [],
    });
    return body;
  }
  const propertiesOf = (name: string) => Object.keys(doc.components.schemas[name].properties ?? {}).sort();

  it('answers ingest, direct upload, presign, resolve, metadata, pin, usage and health in exactly the documented shape', async () => {
    const user = uniqueUser('openapi');
    const png = await pngImage(900);
    const ingested = await documented(
      'post',
      '/v1/media',
      await app.call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(png) }, filename: 'x.png' }) }),
    );
    expect(Object.keys(ingested).sort()).toEqual(propertiesOf('MediaResponseDto'));
    const form = new FormData();
    form.append('file', new Blob([await pngImage(901)], { type: 'image/png' }), 'y.png');
    await documented('post', '/v1/media/upload', await app.call('/v1/media/upload', { method: 'POST', user, body: form }));

    const direct = await pngImage(902);
    const sha256 = createHash('sha256').update(direct).digest('hex');
    const prepared = await documented(
      'post',
      '/v1/media/prepare-upload',
      await app.call('/v1/media/prepare-upload', { method: 'POST', user, body: JSON.stringify({ mime_type: 'image/png', bytes: direct.length, sha256 }) }),
    );
    // `fields` comes with POST uploads only, which the local backend answers with PUT.
    expect(Object.keys(prepared).sort()).toEqual(propertiesOf('PrepareUploadResponseDto').filter((key) => key !== 'fields'));
    // A pending reservation: no retention clock yet, and the declared size and hash.
    const pending = await documented('get', '/v1/media/{id}/metadata', await app.call(`/v1/media/${prepared.id}/metadata`, { user }));
    expect(pending).toMatchObject({ status: 'pending', retention_until: null, bytes: direct.length, sha256 });
    const put = await fetch(prepared.upload_url, { method: prepared.method, headers: prepared.headers, body: direct });
    expect(put.status).toBe(200);
    const completed = await documented('post', '/v1/media/{id}/complete', await fetch(prepared.complete_url, { method: 'POST', headers: { 'x-media-service-key': app.running.config.serviceKeys[0], 'x-jan-user-id': user } }));
    expect(completed).toMatchObject({ id: prepared.id, status: 'ready' });

    const presigned = await documented('get', '/v1/media/{id}/presign', await app.call(`/v1/media/${ingested.id}/presign?download=1`, { user }));
    expect(Object.keys(presigned).sort()).toEqual(propertiesOf('SignedUrlResponseDto'));
    await documented('get', '/v1/media/{id}', await app.call(`/v1/media/${ingested.id}`, { user }));

    const missing = 'jan_01hqr8v9k2x3f4g5h6j7k8m9n0';
    const byIds = await documented(
      'post',
      '/v1/media/resolve',
      await app.call('/v1/media/resolve', { method: 'POST', user, body: JSON.stringify({ ids: [ingested.id, missing], keep_unresolved: true }) }),
    );
    expect(byIds).toMatchObject({ media: [{ id: ingested.id }], unresolved: [missing] });
    expect(Object.keys(byIds.media[0]).sort()).toEqual(propertiesOf('ResolvedMediaDto'));
    const byPayload = await documented(
      'post',
      '/v1/media/resolve',
      await app.call('/v1/media/resolve', {
        method: 'POST',
        user,
        body: JSON.stringify({ payload: { messages: [{ content: [{ image_url: { url: ingested.placeholder } }, { image_url: { url: `data:image/png;${missing}` } }] }] }, keep_unresolved: true }),
      }),
    );
    expect(Object.keys(byPayload).sort()).toEqual(['payload', 'unresolved']);
    await documented('post', '/v1/media/resolve', await app.call('/v1/media/resolve', { method: 'POST', user, body: JSON.stringify({ payload: [1, 'two', null] }) }));

    await documented('get', '/v1/media/{id}/metadata', await app.call(`/v1/media/${ingested.id}/metadata`, { user }));
    const pinned = await documented('put', '/v1/media/{id}/pin', await app.call(`/v1/media/${ingested.id}/pin`, { method: 'PUT', user }));
    expect(pinned).toMatchObject({ pinned: true, retention_until: null });
    await documented('delete', '/v1/media/{id}/pin', await app.call(`/v1/media/${ingested.id}/pin`, { method: 'DELETE', user }));
    const usage = await documented('get', '/v1/usage', await app.call('/v1/usage', { user }));
    expect(usage).toMatchObject({ owner: user, objects: 3, quota_objects: 1000, quota_bytes: null });
    await documented('get', '/healthz', await fetch(`${app.baseUrl}/healthz`));

    const removed = await app.call(`/v1/media/${ingested.id}`, { method: 'DELETE', user });
    expect(removed.status).toBe(204);
    expect(await removed.text()).toBe('');
  });

  it('answers every admin route in exactly the documented shape', async () => {
    const user = uniqueUser('openapi-admin');
    const ingested = (await (
      await app.call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(await pngImage(910)) } }) })
    ).json()) as any;
    await app.call(`/v1/media/${ingested.id}/presign`, { user });
    // Audit entries are written in the background: flush them so the description has events.
    await (app.running.app.get(MediaEvents) as MediaEvents & { flush(): Promise<void> }).flush();

    const page = await documented('get', '/v1/admin/media', await admin(`/v1/admin/media?owner=${user}&limit=1`));
    expect(page.items.map((item: { id: string }) => item.id)).toEqual([ingested.id]);
    const described = await documented('get', '/v1/admin/media/{id}', await admin(`/v1/admin/media/${ingested.id}`));
    expect(described.events.length).toBeGreaterThan(0);
    expect(Object.keys(described.events[0]).sort()).toEqual(propertiesOf('AuditEventDto'));
    const reissued = await documented(
      'post',
      '/v1/admin/media/{id}/reissue',
      await admin(`/v1/admin/media/${ingested.id}/reissue`, { method: 'POST', body: JSON.stringify({ ttl_seconds: 60 }) }),
    );
    expect(reissued.expires_in).toBeGreaterThanOrEqual(59);
    expect(reissued.expires_in).toBeLessThanOrEqual(60);
    await documented('get', '/v1/admin/usage', await admin(`/v1/admin/usage?owner=${user}`));
    const purged = await documented('post', '/v1/admin/media/purge', await admin('/v1/admin/media/purge', { method: 'POST', body: JSON.stringify({ owner: user, dry_run: true }) }));
    expect(purged).toEqual({ purged: [ingested.id], count: 1, dry_run: true, truncated: false, failed: [] });
  });
});
