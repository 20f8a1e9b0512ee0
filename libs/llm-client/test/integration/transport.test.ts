import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { APIConnectionError, APIConnectionTimeoutError, APIError, MediaClient, NotFoundError } from '../../src/index';

// The SDK over real sockets and Node's own fetch (undici), against loopback HTTP servers that
// speak the service's wire format: streaming request bodies, redirects, timeouts and refused
// connections behave here as they will against the real service.

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

async function listen(handler: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void, seen: Seen[]) {
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
    handler(req, res, body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}` };
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

function sendJSON(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': 'srv-req', ...headers });
  res.end(JSON.stringify(body));
}

const ID = 'jan_01hqr8v9k2x3f4g5h6j7k8m9n0';
const OBJECT = { id: ID, mime: 'image/png', bytes: 0, sha256: '', deduped: false, url: '', presigned_url: '', expires_in: 60 };

describe('MediaClient over real HTTP (loopback)', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map(close));
  });

  it('streams a 4 MiB Readable upload as chunked multipart', async () => {
    const seen: Seen[] = [];
    const payload = Buffer.alloc(4 * 1024 * 1024, 7);
    const { server, url } = await listen((_req, res, body) => sendJSON(res, 200, { ...OBJECT, bytes: body.length }), seen);
    servers.push(server);
    const client = new MediaClient({ baseURL: url, serviceKey: 'svc', env: {}, propagator: false });
    const source = Readable.from(
      (function* () {
        for (let offset = 0; offset < payload.length; offset += 64 * 1024) yield payload.subarray(offset, offset + 64 * 1024);
      })(),
    );
    await client.media.upload(source, { filename: 'big.png', mimeType: 'image/png' }, { userId: 'u1' });
    const request = seen[0]!;
    expect(request.headers['transfer-encoding']).toBe('chunked');
    expect(request.headers['x-jan-user-id']).toBe('u1');
    expect(request.headers['x-media-service-key']).toBe('svc');
    const boundary = /boundary=(.+)$/.exec(request.headers['content-type']!)![1]!;
    const start = request.body.indexOf('\r\n\r\n') + 4;
    const end = request.body.lastIndexOf(`\r\n--${boundary}--`);
    expect(createHash('sha256').update(request.body.subarray(start, end)).digest('hex')).toBe(
      createHash('sha256').update(payload).digest('hex'),
    );
  });

  it('uploads directly to a separate storage server with a Content-Length and no service credentials', async () => {
    const storageSeen: Seen[] = [];
    const storage = await listen((_req, res) => {
      res.writeHead(200);
      res.end();
    }, storageSeen);
    servers.push(storage.server);
    const apiSeen: Seen[] = [];
    const api = await listen((req, res) => {
      if (req.url === '/v1/media/prepare-upload') {
        sendJSON(res, 200, { id: ID, upload_url: `${storage.url}/bucket/key?sig=1`, mime_type: 'image/png', expires_in: 60, method: 'PUT', headers: { 'content-type': 'image/png' } });
      } else sendJSON(res, 200, OBJECT);
    }, apiSeen);
    servers.push(api.server);
    const bytes = Buffer.from('png bytes for the bucket');
    const client = new MediaClient({ baseURL: api.url, serviceKey: 'svc', env: {}, propagator: false });
    await client.media.uploadDirect(bytes, { mimeType: 'image/png' });
    expect(storageSeen).toHaveLength(1);
    expect(storageSeen[0]!.method).toBe('PUT');
    expect(storageSeen[0]!.headers['content-length']).toBe(String(bytes.length));
    expect(storageSeen[0]!.headers['x-media-service-key']).toBeUndefined();
    expect(storageSeen[0]!.body.equals(bytes)).toBe(true);
    expect(apiSeen.map((s) => s.url)).toEqual(['/v1/media/prepare-upload', `/v1/media/${ID}/complete`]);
  });

  it('streams a download and drops credentials on a redirect to another origin', async () => {
    const storageSeen: Seen[] = [];
    const bytes = Buffer.alloc(256 * 1024, 3);
    const storage = await listen((_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': String(bytes.length) });
      res.end(bytes);
    }, storageSeen);
    servers.push(storage.server);
    const api = await listen((_req, res) => {
      res.writeHead(302, { location: `${storage.url}/obj` });
      res.end();
    }, []);
    servers.push(api.server);
    const client = new MediaClient({ baseURL: api.url, serviceKey: 'svc', bearerToken: 'tok', env: {}, propagator: false });
    const download = await client.media.download(ID);
    expect(download.mime).toBe('image/png');
    expect((await download.buffer()).equals(bytes)).toBe(true);
    expect(storageSeen[0]!.headers['x-media-service-key']).toBeUndefined();
    expect(storageSeen[0]!.headers['authorization']).toBeUndefined();
  });

  it('maps error bodies and honours Retry-After from a real server', async () => {
    const seen: Seen[] = [];
    let calls = 0;
    const { server, url } = await listen((_req, res) => {
      calls++;
      if (calls === 1) sendJSON(res, 429, { error: 'slow down', code: 'rate_limited' }, { 'retry-after': '0' });
      else sendJSON(res, 404, { error: 'media not found', code: 'media_not_found', request_id: 'r-1' });
    }, seen);
    servers.push(server);
    const client = new MediaClient({ baseURL: url, env: {}, propagator: false });
    const error = await client.media.metadata(ID).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NotFoundError);
    expect((error as NotFoundError).code).toBe('media_not_found');
    expect((error as NotFoundError).requestId).toBe('r-1');
    expect(seen).toHaveLength(2);
  });

  it('times out on a server that never answers', async () => {
    const { server, url } = await listen(() => undefined, []);
    servers.push(server);
    const client = new MediaClient({ baseURL: url, env: {}, propagator: false, timeoutMs: 100, maxRetries: 1, retry: { initialDelayMs: 1 } });
    const started = Date.now();
    await expect(client.media.metadata(ID)).rejects.toBeInstanceOf(APIConnectionTimeoutError);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('reports a refused connection as APIConnectionError after its retries', async () => {
    const { server, url } = await listen(() => undefined, []);
    await close(server);
    const client = new MediaClient({ baseURL: url, env: {}, propagator: false, retry: { initialDelayMs: 1 } });
    const error = await client.media.resolveIds([ID]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APIConnectionError);
    expect((error as Error).message).toMatch(/ECONNREFUSED|fetch failed/);
  });

  it('holds a resolve no longer than its overall deadline, across attempts and backoff', async () => {
    const seen: Seen[] = [];
    const { server, url } = await listen(() => undefined, seen);
    servers.push(server);
    // Default per-attempt timeout (30 s) and retries (2): only the deadline can end this early.
    const client = new MediaClient({ baseURL: url, env: {}, propagator: false, resolveDeadlineMs: 600 });
    expect(client.timeoutMs).toBe(30_000);
    let started = Date.now();
    const error = await client.media.resolvePayload({ image: `data:image/png;${ID}` }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(APIConnectionTimeoutError);
    expect((error as Error).message).toMatch(/deadline of 600 ms/);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(seen).toHaveLength(1);

    // A per-call deadline wins, for any call; attempts and backoff all fit inside it, and no retry
    // starts in the deadline's last tenth (it would only time out, and hide the server's 503).
    const arrivals: number[] = [];
    const flaky = await listen((_req, res) => {
      arrivals.push(Date.now());
      sendJSON(res, 503, { error: 'busy' });
    }, []);
    servers.push(flaky.server);
    const retrying = new MediaClient({ baseURL: flaky.url, env: {}, propagator: false, maxRetries: 50, retry: { initialDelayMs: 100, maxDelayMs: 100 } });
    started = Date.now();
    const busy = await retrying.media.metadata(ID, { deadlineMs: 700 }).catch((e: unknown) => e);
    expect(busy).toBeInstanceOf(APIError);
    expect((busy as APIError).status).toBe(503);
    expect(Date.now() - started).toBeLessThan(3_000);
    // It did retry (about every 100 ms) until a retry would not have fitted.
    expect(arrivals.length).toBeGreaterThanOrEqual(3);
  });

  it('defaults resolve to a deadline well under the per-attempt sum', () => {
    const client = new MediaClient({ baseURL: 'http://127.0.0.1:9', env: {}, propagator: false });
    expect(client.resolveDeadlineMs).toBe(10_000);
    expect(client.resolveDeadlineMs).toBeLessThan(client.timeoutMs * (client.maxRetries + 1));
    expect(client.deadlineMs).toBeUndefined();
  });
});
