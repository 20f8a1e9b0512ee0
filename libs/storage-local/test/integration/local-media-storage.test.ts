import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { isDomainError } from '@jan/domain';
import { LOCAL_FILES_PATH, LOCAL_UPLOADS_PATH, LocalDiskMediaStorage, ObjectExistsError, type SignedQuery } from '../../src';
import { describeMediaStorageContract } from '../contract/media-storage.contract';
import { allowLoopbackOnly } from '../contract/loopback-only';

/**
 * Local disk on a real temporary directory. Its signed URLs point at the media API itself
 * (apps/media-api files/uploads controllers, covered by that app's e2e tests); here a minimal
 * loopback server does what those routes do with the adapter's own verifyRead/verifyUpload, so
 * the contract's plain-fetch checks exercise the adapter's signing, verification and expiry.
 */
async function serveSignedRoutes(adapter: () => LocalDiskMediaStorage): Promise<{ origin: string; close: () => Promise<void> }> {
  const server = http.createServer(async (req, res) => {
    try {
      const storage = adapter();
      const url = new URL(req.url ?? '/', 'http://local');
      const query = Object.fromEntries(url.searchParams) as SignedQuery;
      if (req.method === 'GET' && url.pathname.startsWith(LOCAL_FILES_PATH)) {
        const key = decodeURIComponent(url.pathname.slice(LOCAL_FILES_PATH.length));
        const check = storage.verifyRead(key, query);
        if (!check.ok) return void res.writeHead(403).end(check.reason);
        const object = await storage.get(key);
        res.writeHead(200, { 'content-type': query.ct ?? 'application/octet-stream', 'content-length': object.bytes, 'content-disposition': query.cd ?? 'inline' });
        object.body.pipe(res);
        return;
      }
      if (req.method === 'PUT' && url.pathname.startsWith(LOCAL_UPLOADS_PATH)) {
        const key = decodeURIComponent(url.pathname.slice(LOCAL_UPLOADS_PATH.length));
        const check = storage.verifyUpload(key, query);
        if (!check.ok) return void res.writeHead(403).end(check.reason);
        if (query.ct && req.headers['content-type'] !== query.ct) return void res.writeHead(403).end('content-type');
        if (query.len && req.headers['content-length'] !== query.len) return void res.writeHead(403).end('content-length');
        const { bytes } = await storage.put(key, req, { contentType: query.ct ?? 'application/octet-stream' });
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bytes }));
      }
      res.writeHead(404).end();
    } catch (error) {
      res.writeHead(isDomainError(error, 'media_not_found') ? 404 : 500).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

let lift: (() => void) | undefined;
beforeAll(() => {
  lift = allowLoopbackOnly();
});
afterAll(() => lift?.());

describeMediaStorageContract(
  'LocalDiskMediaStorage on a temporary directory',
  { storesContentType: false, responseContentType: true, putUpload: true, postUpload: 'answers-put', expiry: true },
  async () => {
    const root = await mkdtemp(join(tmpdir(), 'jan-local-storage-'));
    // The adapter needs the routes' origin, so the server binds first and looks the adapter up per request.
    let storage: LocalDiskMediaStorage | undefined;
    const routes = await serveSignedRoutes(() => storage!);
    storage = new LocalDiskMediaStorage({ root, publicUrl: routes.origin, signingKeys: [{ id: 'k1', secret: 'x'.repeat(32) }] });
    return {
      storage,
      dispose: async () => {
        await routes.close();
        await rm(root, { recursive: true, force: true });
      },
    };
  },
);

describe('LocalDiskMediaStorage ping', () => {
  let dir: string;
  let storage: LocalDiskMediaStorage;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'jan-local-ping-'));
    storage = new LocalDiskMediaStorage({ root: dir, publicUrl: 'http://127.0.0.1:1', signingKeys: [{ id: 'k1', secret: 'x'.repeat(40) }] });
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('writes and removes a probe file of its own, even when many run at once', async () => {
    await Promise.all(Array.from({ length: 25 }, () => storage.ping()));
    expect(await readdir(join(dir, '.readiness'))).toEqual([]);
    expect(await readdir(join(dir, 'images'))).toEqual([]);
  });

  it('fails when the probe cannot be written, though the objects directory answers', async () => {
    await storage.ping();
    // A file where the probe's directory should be: no write can happen there, even as root.
    await rm(join(dir, '.readiness'), { recursive: true });
    await writeFile(join(dir, '.readiness'), 'not a directory');
    await expect(storage.ping()).rejects.toMatchObject({ code: expect.stringMatching(/^(EEXIST|ENOTDIR)$/) });
    expect((await readdir(dir)).sort()).toEqual(['.readiness', 'images']);
  });
});

describe('LocalDiskMediaStorage with bytes already staged', () => {
  let dir: string;
  let storage: LocalDiskMediaStorage;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'jan-local-staged-'));
    storage = new LocalDiskMediaStorage({ root: dir, publicUrl: 'http://127.0.0.1:1', signingKeys: [{ id: 'k1', secret: 'x'.repeat(40) }] });
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  /** A body stream that must not be read when the bytes come from elsewhere. */
  function untouchedBody() {
    const probe = { read: false };
    const body = new Readable({
      read() {
        probe.read = true;
        this.push(null);
      },
    });
    return { body, probe };
  }
  const partials = async () => (await readdir(join(dir, 'images'))).filter((f) => f.includes('partial'));

  it('copies a staged file in the kernel, without reading the stream, and leaves nothing on failure', async () => {
    const source = join(dir, 'staged.bin');
    const bytes = Buffer.from('staged bytes '.repeat(1000));
    await writeFile(source, bytes);
    const { body, probe } = untouchedBody();
    const key = 'images/jan_01m8efzv3ptkad8aa3vt69hvc8.png';
    expect(await storage.put(key, body, { contentType: 'image/png', sourcePath: source })).toEqual({ bytes: bytes.length });
    expect(probe.read).toBe(false);
    expect(await readFile(join(dir, key))).toEqual(bytes);

    const missing = 'images/jan_01m8efzv3ptkad8aa3vt69hvc9.png';
    await expect(storage.put(missing, Readable.from([]), { contentType: 'image/png', sourcePath: join(dir, 'gone.bin') })).rejects.toThrow();
    expect(await storage.head(missing)).toBeNull();
    expect(await partials()).toEqual([]);
  });

  it('writes bytes held in memory without reading the stream, and replaces an existing object whole', async () => {
    const bytes = Buffer.from('in-memory bytes '.repeat(500));
    const { body, probe } = untouchedBody();
    const key = 'images/jan_01m8efzv3ptkad8aa3vt69hvd0.png';
    expect(await storage.put(key, body, { contentType: 'image/png', sourceBuffer: bytes })).toEqual({ bytes: bytes.length });
    expect(probe.read).toBe(false);
    expect(await readFile(join(dir, key))).toEqual(bytes);

    // A second put of the same key replaces the object atomically (temp file, then rename).
    const replacement = Buffer.from('replacement');
    await storage.put(key, Readable.from([]), { contentType: 'image/png', sourceBuffer: replacement });
    expect(await readFile(join(dir, key))).toEqual(replacement);
    expect(await partials()).toEqual([]);
  });
});

describe('LocalDiskMediaStorage.putNew and a broken data directory', () => {
  let root: string;
  let storage: LocalDiskMediaStorage;
  const key = 'images/jan_01m8g0000000000000000000an.png';
  const stream = (text: string) => Readable.from([Buffer.from(text)]);

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'jan-local-putnew-'));
    storage = new LocalDiskMediaStorage({ root, publicUrl: 'http://127.0.0.1:1', signingKeys: [{ id: 'k1', secret: 'x'.repeat(32) }] });
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('writes a new key once: of two writes the first to finish wins, and the other leaves nothing', async () => {
    expect(await storage.putNew(key, stream('first'), { contentType: 'image/png' })).toEqual({ bytes: 5 });
    await expect(storage.putNew(key, stream('second, longer'), { contentType: 'image/png' })).rejects.toBeInstanceOf(ObjectExistsError);
    expect(await readFile(join(root, key), 'utf8')).toBe('first');
    expect(await readdir(join(root, 'images'))).toEqual(['jan_01m8g0000000000000000000an.png']);
    // put still replaces, as the service's own re-encode does.
    await storage.put(key, stream('third'), { contentType: 'image/png' });
    expect(await readFile(join(root, key), 'utf8')).toBe('third');
  });

  it('opens the file when get() is called: removed after, it still streams; removed before, media_not_found', async () => {
    await storage.put(key, stream('kept open'), { contentType: 'image/png' });
    const object = await storage.get(key);
    await rm(join(root, key));
    const chunks: Buffer[] = [];
    for await (const chunk of object.body) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('kept open');
    await expect(storage.get(key)).rejects.toMatchObject({ code: 'media_not_found' });
  });

  it('makes the images directory again when it was removed, for bytes handed over whole', async () => {
    await storage.put(key, stream('a'), { contentType: 'image/png' });
    await rm(join(root, 'images'), { recursive: true });
    const other = 'images/jan_01m8g0000000000000000000ap.png';
    expect(await storage.put(other, Readable.from([]), { contentType: 'image/png', sourceBuffer: Buffer.from('bytes') })).toEqual({ bytes: 5 });
    expect(await readFile(join(root, other), 'utf8')).toBe('bytes');
  });

  it('answers storage_unavailable, not a bare file-system error, when the directory is replaced by a file', async () => {
    await rm(join(root, 'images'), { recursive: true, force: true });
    await writeFile(join(root, 'images'), 'not a directory');
    const code = (promise: Promise<unknown>) => promise.then(() => 'ok', (error: unknown) => (isDomainError(error) ? error.code : String(error)));
    expect(await code(storage.put(key, stream('x'), { contentType: 'image/png' }))).toBe('storage_unavailable');
    expect(await code(storage.put(key, Readable.from([]), { contentType: 'image/png', sourceBuffer: Buffer.from('x') }))).toBe('storage_unavailable');
    expect(await code(storage.get(key))).toBe('storage_unavailable');
    expect(await code(storage.head(key))).toBe('storage_unavailable');
    expect(await code(storage.delete(key))).toBe('storage_unavailable');
  });

  it('answers storage_unavailable when an object key is a non-empty directory (ERR_FS_EISDIR from rm), and keeps it', async () => {
    await mkdir(join(root, key), { recursive: true });
    await writeFile(join(root, key, 'inside'), 'x');
    const failure = await storage.delete(key).then(() => null, (error: unknown) => error);
    expect(failure).toMatchObject({ code: 'storage_unavailable' });
    expect(isDomainError(failure)).toBe(true);
    expect(await readdir(join(root, key))).toEqual(['inside']);
  });
});
