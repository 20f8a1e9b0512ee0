import { request as httpRequest } from 'node:http';
import { startTestApp, type TestApp } from '../support/test-app';
import { dataUrl, pngImage, uniqueUser } from '../support/images';

/** One raw HTTP/1.1 exchange; fetch cannot send HEAD and read what a 206 would have carried. */
function raw(url: string, method: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The serve paths as browsers, CDNs and providers' fetchers use them (RFC 9110 ranges, HEAD). */
describe('serve paths: proxy and signed local URLs', () => {
  let app: TestApp;
  let owner: string;
  let id: string;
  let png: Buffer;
  let signedUrl: string;

  beforeAll(async () => {
    app = await startTestApp();
    owner = uniqueUser('serve');
    png = await pngImage(4242, 24);
    const res = await app.call('/v1/media', { method: 'POST', user: owner, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(png) }, filename: 'a,b.png' }) });
    const body = (await res.json()) as { id: string; url: string };
    id = body.id;
    signedUrl = body.url;
  });
  afterAll(async () => {
    await app?.close();
  });

  const proxyHeaders = () => ({ 'x-media-service-key': 'e2e-service-key-0123456789abcdef', 'x-jan-user-id': owner });

  it('answers HEAD on the proxy with the whole object\'s headers even when a Range is sent (RFC 9110 §14.2: ranges are for GET)', async () => {
    const head = await raw(`${app.baseUrl}/v1/media/${id}`, 'HEAD', { ...proxyHeaders(), range: 'bytes=0-9' });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(png.length));
    expect(head.headers['content-range']).toBeUndefined();
    expect(head.body.length).toBe(0);
  });

  it('serves single, suffix and open-ended ranges on a signed local URL, with Accept-Ranges', async () => {
    const whole = await raw(signedUrl, 'GET');
    expect(whole.status).toBe(200);
    expect(whole.headers['accept-ranges']).toBe('bytes');
    const cases: Array<[string, number, number]> = [
      ['bytes=0-9', 0, 9],
      ['bytes=-100', png.length - 100, png.length - 1],
      [`bytes=${png.length - 5}-`, png.length - 5, png.length - 1],
    ];
    for (const [range, first, last] of cases) {
      const part = await raw(signedUrl, 'GET', { range });
      expect(part.status).toBe(206);
      expect(part.headers['content-range']).toBe(`bytes ${first}-${last}/${png.length}`);
      expect(part.headers['content-length']).toBe(String(last - first + 1));
      expect(part.headers['content-type']).toBe('image/png');
      expect(part.body.equals(png.subarray(first, last + 1))).toBe(true);
    }
  });

  it('answers 416 with Content-Range: bytes */size for a range past the end of a signed local URL', async () => {
    const past = await raw(signedUrl, 'GET', { range: `bytes=${png.length}-` });
    expect(past.status).toBe(416);
    expect(past.headers['content-range']).toBe(`bytes */${png.length}`);
    expect(JSON.parse(past.body.toString())).toMatchObject({ code: 'range_not_satisfiable' });
  });

  it('serves the whole object for several ranges or a malformed one on a signed local URL, and ignores Range on HEAD', async () => {
    for (const range of ['bytes=0-1,5-6', 'bytes=abc', 'items=0-1']) {
      const res = await raw(signedUrl, 'GET', { range });
      expect(res.status).toBe(200);
      expect(res.body.equals(png)).toBe(true);
    }
    const head = await raw(signedUrl, 'HEAD', { range: 'bytes=0-9' });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(png.length));
    expect(head.headers['accept-ranges']).toBe('bytes');
    expect(head.body.length).toBe(0);
  });

  it('refuses a signed URL whose signed parameter is split into repeated ones (no duplicated Content-Disposition)', async () => {
    const presigned = await app.call(`/v1/media/${id}/presign?download=1`, { user: owner });
    const url = new URL(((await presigned.json()) as { url: string }).url);
    const cd = url.searchParams.get('cd')!;
    expect(cd).toContain(',');
    const [first, rest] = [cd.slice(0, cd.indexOf(',')), cd.slice(cd.indexOf(',') + 1)];
    url.searchParams.delete('cd');
    url.searchParams.append('cd', first);
    url.searchParams.append('cd', rest);
    const split = await raw(url.toString(), 'GET');
    expect(split.status).toBe(403);
    expect(JSON.parse(split.body.toString())).toMatchObject({ code: 'invalid_signature' });
  });

  it('gives a signed local URL a strong ETag and answers If-None-Match with 304 (headers, no body)', async () => {
    const whole = await raw(signedUrl, 'GET');
    const etag = whole.headers['etag'] as string;
    expect(etag).toMatch(/^"[^"]+"$/);
    const again = await raw(signedUrl, 'GET');
    expect(again.headers['etag']).toBe(etag);
    for (const tag of [etag, `W/${etag}`, '*', `"other", ${etag}`]) {
      const notModified = await raw(signedUrl, 'GET', { 'if-none-match': tag });
      expect(notModified.status).toBe(304);
      expect(notModified.headers['etag']).toBe(etag);
      expect(notModified.headers['cache-control']).toMatch(/^private, max-age=\d+$/);
      expect(notModified.body.length).toBe(0);
    }
    expect((await raw(signedUrl, 'GET', { 'if-none-match': '"other"' })).status).toBe(200);
    const head = await raw(signedUrl, 'HEAD', { 'if-none-match': etag });
    expect(head.status).toBe(304);
  });

  it('applies Range on a signed local URL only when If-Range names its current ETag, strongly', async () => {
    const etag = (await raw(signedUrl, 'GET')).headers['etag'] as string;
    expect((await raw(signedUrl, 'GET', { range: 'bytes=0-9', 'if-range': etag })).status).toBe(206);
    for (const ifRange of [`W/${etag}`, '"other"', 'Sat, 28 Nov 2026 14:00:00 GMT']) {
      const res = await raw(signedUrl, 'GET', { range: 'bytes=0-9', 'if-range': ifRange });
      expect(res.status).toBe(200);
      expect(res.body.equals(png)).toBe(true);
    }
  });

  it('checks the signature before answering 304: a tampered URL gets 403 even with a matching If-None-Match', async () => {
    const tampered = new URL(signedUrl);
    tampered.searchParams.set('ct', 'text/html');
    const res = await raw(tampered.toString(), 'GET', { 'if-none-match': '*' });
    expect(res.status).toBe(403);
  });

  it('answers 404, never 304, to a user without access who sends If-None-Match on the proxy', async () => {
    const etag = (await app.call(`/v1/media/${id}`, { user: owner })).headers.get('etag')!;
    for (const tag of [etag, '*']) {
      const res = await raw(`${app.baseUrl}/v1/media/${id}`, 'GET', { ...proxyHeaders(), 'x-jan-user-id': uniqueUser('stranger'), 'if-none-match': tag });
      expect(res.status).toBe(404);
    }
  });

  it('answers a conditional HEAD with 304 and no Content-Length: 0 (a cache would take it for the object\'s)', async () => {
    const etag = (await raw(signedUrl, 'GET')).headers['etag'] as string;
    const files = await raw(signedUrl, 'HEAD', { 'if-none-match': etag });
    expect(files.status).toBe(304);
    expect([undefined, String(png.length)]).toContain(files.headers['content-length']);
    const proxy = await raw(`${app.baseUrl}/v1/media/${id}`, 'HEAD', { ...proxyHeaders(), 'if-none-match': '*' });
    expect(proxy.status).toBe(304);
    expect([undefined, String(png.length)]).toContain(proxy.headers['content-length']);
  });
});
