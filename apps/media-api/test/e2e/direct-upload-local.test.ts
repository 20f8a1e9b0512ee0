import { createHash } from 'node:crypto';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { request, type ClientRequest } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestApp, type TestApp } from '../support/test-app';
import { dataUrl, noisyPng, pngImage, uniqueUser } from '../support/images';

/**
 * The local backend's signed upload URL under the abuse a client can put it to: uploads racing on
 * one URL, an upload still arriving when the reservation is completed or discarded, a client that
 * goes away mid-upload. Whatever happens, the bytes `complete` checked are the bytes served, and no
 * file is left that no row points at.
 */
describe('direct uploads on the local backend', () => {
  let app: TestApp;

  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(async () => {
    await app?.close();
  });

  const images = () => join(app.dataDir, 'objects', 'images');
  const uploads = () => join(app.dataDir, 'objects', 'uploads');
  const inFolder = async (folder: string, id: string) => (await readdir(folder).catch(() => [] as string[])).filter((name) => name.startsWith(id));
  /** Files of one id: the object's (`images/`) and uploads on their way (`uploads/`). */
  const filesOf = async (id: string) => [...(await inFolder(images(), id)).map((f) => `images/${f}`), ...(await inFolder(uploads(), id)).map((f) => `uploads/${f}`)];
  const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

  async function prepare(user: string, body: Record<string, unknown> = {}) {
    const res = await app.call('/v1/media/prepare-upload', { method: 'POST', user, body: JSON.stringify({ mime_type: 'image/png', ...body }) });
    expect(res.status).toBe(200);
    return (await res.json()) as { id: string; upload_url: string };
  }

  /** A PUT that sends `head` bytes now; `finish()` sends the rest and gives the answer, `abort()` drops the connection. */
  function slowPut(url: string, bytes: Buffer, head = 100) {
    let req!: ClientRequest;
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      req = request(url, { method: 'PUT', headers: { 'content-type': 'image/png', 'content-length': bytes.length } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
    });
    req.write(bytes.subarray(0, head));
    return {
      finish: () => {
        req.end(bytes.subarray(head));
        return answer;
      },
      abort: () => {
        answer.catch(() => undefined);
        req.destroy();
      },
    };
  }

  const put = (url: string, bytes: Buffer) => fetch(url, { method: 'PUT', headers: { 'content-type': 'image/png' }, body: bytes });

  describe('an old client that never calls complete (complete on first use)', () => {
    const metadataOf = async (id: string, user: string) => (await (await app.call(`/v1/media/${id}/metadata`, { user })).json()) as { status: string };

    it('serves, presigns and resolves an upload on its first use, as Jan\'s contract has it', async () => {
      const user = uniqueUser('first-use');
      const bytes = await pngImage(120);
      const { id, upload_url } = await prepare(user, { bytes: bytes.length, sha256: sha256(bytes) });
      expect((await put(upload_url, bytes)).status).toBe(200);

      const served = await app.call(`/v1/media/${id}`, { user });
      expect(served.status).toBe(200);
      expect(sha256(Buffer.from(await served.arrayBuffer()))).toBe(sha256(bytes));
      expect(await metadataOf(id, user)).toMatchObject({ status: 'ready' });
      expect(await filesOf(id)).toEqual([`images/${id}.png`]);
      const presigned = await app.call(`/v1/media/${id}/presign`, { user });
      expect(presigned.status).toBe(200);
      const signed = (await presigned.json()) as { url: string };
      expect(sha256(Buffer.from(await (await fetch(signed.url)).arrayBuffer()))).toBe(sha256(bytes));

      // A second upload, first used by resolve: the placeholder and the ids form.
      const other = await pngImage(121);
      const second = await prepare(user);
      expect((await put(second.upload_url, other)).status).toBe(200);
      const res = await app.call('/v1/media/resolve', { method: 'POST', user, body: JSON.stringify({ payload: { image_url: `data:image/png;${second.id}` } }) });
      expect(res.status).toBe(200);
      const url = ((await res.json()) as { payload: { image_url: string } }).payload.image_url;
      expect(sha256(Buffer.from(await (await fetch(url)).arrayBuffer()))).toBe(sha256(other));
      const third = await prepare(user);
      expect((await put(third.upload_url, await pngImage(122))).status).toBe(200);
      const ids = await app.call('/v1/media/resolve', { method: 'POST', user, body: JSON.stringify({ ids: [third.id, id] }) });
      expect(ids.status).toBe(200);
      expect(((await ids.json()) as { media: { id: string }[] }).media.map((m) => m.id).sort()).toEqual([third.id, id].sort());
    });

    it('answers 404 on first use when the bytes are not the declared ones, and discards the reservation as complete does', async () => {
      const user = uniqueUser('first-use-bad');
      const bytes = await pngImage(123);
      const { id, upload_url } = await prepare(user, { sha256: sha256(await pngImage(124)) });
      expect((await put(upload_url, bytes)).status).toBe(200);

      const read = await app.call(`/v1/media/${id}`, { user });
      expect(read.status).toBe(404);
      expect(await read.json()).toMatchObject({ code: 'media_not_found' });
      // complete's checksum_mismatch discarded it: row and files gone, as docs/api.md says.
      expect((await app.call(`/v1/media/${id}/metadata`, { user })).status).toBe(404);
      expect(await filesOf(id)).toEqual([]);
      const resolved = await app.call('/v1/media/resolve', { method: 'POST', user, body: JSON.stringify({ ids: [id], keep_unresolved: true }) });
      expect(await resolved.json()).toMatchObject({ media: [], unresolved: [id] });
    });

    it('keeps a reservation nothing was uploaded to yet, and lists it unresolved', async () => {
      const user = uniqueUser('first-use-early');
      const { id, upload_url } = await prepare(user);
      expect((await app.call(`/v1/media/${id}`, { user })).status).toBe(404);
      expect((await app.call(`/v1/media/${id}/presign`, { user })).status).toBe(404);
      const refused = await app.call('/v1/media/resolve', { method: 'POST', user, body: JSON.stringify({ payload: { u: `data:image/png;${id}` } }) });
      expect(refused.status).toBe(404);
      expect(await refused.json()).toMatchObject({ code: 'media_not_found', details: { ids: [id] } });
      expect(await metadataOf(id, user)).toMatchObject({ status: 'pending' });

      // The upload arrives later; its first use then completes it.
      const bytes = await pngImage(125);
      expect((await put(upload_url, bytes)).status).toBe(200);
      expect((await app.call(`/v1/media/${id}`, { method: 'HEAD', user })).status).toBe(200);
      expect(await metadataOf(id, user)).toMatchObject({ status: 'ready' });
    });

    it('keeps the reservation id working on every later use when the owner already had the same bytes, as an object of its own', async () => {
      const owner = uniqueUser('first-use-twin');
      const mallory = uniqueUser('first-use-twin-mallory');
      const bytes = await pngImage(127);
      const ingested = await app.call('/v1/media', { method: 'POST', user: owner, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(bytes) } }) });
      expect(ingested.status).toBe(200);
      const original = ((await ingested.json()) as { id: string }).id;
      const { id, upload_url } = await prepare(owner);
      expect((await put(upload_url, bytes)).status).toBe(200);

      // First use, then every later use of the id the old client keeps in its chat history.
      for (let use = 0; use < 2; use++) {
        const served = await app.call(`/v1/media/${id}`, { user: owner });
        expect(served.status).toBe(200);
        expect(sha256(Buffer.from(await served.arrayBuffer()))).toBe(sha256(bytes));
      }
      expect(await metadataOf(id, owner)).toMatchObject({ id, status: 'ready', sha256: sha256(bytes) });
      // Its own stored copy, beside the original's, and the upload is gone.
      expect(await filesOf(id)).toEqual([`images/${id}.png`]);
      expect(await filesOf(original)).toEqual([`images/${original}.png`]);
      const presigned = await app.call(`/v1/media/${id}/presign`, { user: owner });
      expect(presigned.status).toBe(200);
      const signed = (await presigned.json()) as { id: string; url: string };
      expect(signed.id).toBe(id);
      expect(sha256(Buffer.from(await (await fetch(signed.url)).arrayBuffer()))).toBe(sha256(bytes));
      const resolve = async (user: string) =>
        app.call('/v1/media/resolve', { method: 'POST', user, body: JSON.stringify({ payload: { image_url: `data:image/png;${id}` }, keep_unresolved: true }) });
      const resolved = await resolve(owner);
      expect(resolved.status).toBe(200);
      const url = ((await resolved.json()) as { payload: { image_url: string } }).payload.image_url;
      expect(sha256(Buffer.from(await (await fetch(url)).arrayBuffer()))).toBe(sha256(bytes));
      // An explicit complete, late, answers the reservation's own object.
      const completed = await app.call(`/v1/media/${id}/complete`, { method: 'POST', user: owner });
      expect(completed.status).toBe(200);
      expect(await completed.json()).toMatchObject({ id, deduped: false });

      // Owner isolation: another user still gets 404 for either id.
      expect((await app.call(`/v1/media/${id}`, { user: mallory })).status).toBe(404);
      expect((await app.call(`/v1/media/${id}/presign`, { user: mallory })).status).toBe(404);
      expect(await (await resolve(mallory)).json()).toMatchObject({ unresolved: [id] });

      // Two stored objects, charged as two: the reservation was counted as one object at prepare.
      expect(await (await app.call('/v1/usage', { user: owner })).json()).toMatchObject({ objects: 2, bytes: 2 * bytes.length });

      // New ingests of the same bytes still dedupe to one of the existing objects.
      const again = await app.call('/v1/media', { method: 'POST', user: owner, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(bytes) } }) });
      expect(await again.json()).toMatchObject({ id: original, deduped: true });
      expect(await (await app.call('/v1/usage', { user: owner })).json()).toMatchObject({ objects: 2 });

      // Deleting the original leaves the reservation's id and bytes alone, and vice versa.
      expect((await app.call(`/v1/media/${original}`, { method: 'DELETE', user: owner })).status).toBe(204);
      expect((await app.call(`/v1/media/${original}`, { user: owner })).status).toBe(404);
      const still = await app.call(`/v1/media/${id}`, { user: owner });
      expect(still.status).toBe(200);
      expect(sha256(Buffer.from(await still.arrayBuffer()))).toBe(sha256(bytes));
      expect((await resolve(owner)).status).toBe(200);
      expect(await (await app.call('/v1/usage', { user: owner })).json()).toMatchObject({ objects: 1, bytes: bytes.length });
      // With the original gone, the same bytes dedupe to the reservation's object.
      const third = await app.call('/v1/media', { method: 'POST', user: owner, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(bytes) } }) });
      expect(await third.json()).toMatchObject({ id, deduped: true });
      expect((await app.call(`/v1/media/${id}`, { method: 'DELETE', user: owner })).status).toBe(204);
      expect((await app.call(`/v1/media/${id}`, { user: owner })).status).toBe(404);
      expect(await filesOf(id)).toEqual([]);
      expect(await (await app.call('/v1/usage', { user: owner })).json()).toMatchObject({ objects: 0, bytes: 0 });
    });

    it("does not complete another user's upload: their GET and resolve stay 404 and the reservation stays pending", async () => {
      const owner = uniqueUser('first-use-owner');
      const mallory = uniqueUser('first-use-mallory');
      const { id, upload_url } = await prepare(owner);
      expect((await put(upload_url, await pngImage(126))).status).toBe(200);

      expect((await app.call(`/v1/media/${id}`, { user: mallory })).status).toBe(404);
      expect((await app.call(`/v1/media/${id}/presign`, { user: mallory })).status).toBe(404);
      const kept = await app.call('/v1/media/resolve', { method: 'POST', user: mallory, body: JSON.stringify({ ids: [id], keep_unresolved: true }) });
      expect(await kept.json()).toMatchObject({ media: [], unresolved: [id] });
      expect(await metadataOf(id, owner)).toMatchObject({ status: 'pending' });
      expect(await filesOf(id)).toEqual([`uploads/${id}.png`]);
    });
  });

  it('stores a declared filename with a NUL or control characters cleaned, not as a 500 from the database', async () => {
    const user = uniqueUser('direct-name');
    const { id } = await prepare(user, { filename: 'a\u0000b\r\n.png' });
    const metadata = await app.call(`/v1/media/${id}/metadata`, { user });
    expect(((await metadata.json()) as { filename: string }).filename).toBe('ab.png');
  });

  it('keeps the checked bytes when a second upload on the same URL finishes after complete, and drops that upload', async () => {
    const user = uniqueUser();
    const good = await pngImage(101);
    const late = await pngImage(102, 24);
    const { id, upload_url } = await prepare(user);

    const slow = slowPut(upload_url, late);
    await sleep(50);
    expect((await put(upload_url, good)).status).toBe(200);
    const completed = await app.call(`/v1/media/${id}/complete`, { method: 'POST', user });
    expect(completed.status).toBe(200);

    // complete wrote the bytes it checked to the object and removed the upload: the late one
    // lands on an empty upload key, finds the reservation closed, and is removed again.
    const answer = await slow.finish();
    expect(answer.status).toBe(404);
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'media_not_found', error: 'no open upload reservation for this URL' });

    const served = await app.call(`/v1/media/${id}`, { user });
    expect(served.status).toBe(200);
    expect(sha256(Buffer.from(await served.arrayBuffer()))).toBe(sha256(good));
    expect(await filesOf(id)).toEqual([`images/${id}.png`]);
  });

  it('leaves no file behind when an upload lands after its reservation was completed as a duplicate', async () => {
    const user = uniqueUser();
    const bytes = await pngImage(103);
    const existing = await app.call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(bytes) } }) });
    const existingId = ((await existing.json()) as { id: string }).id;
    const { id, upload_url } = await prepare(user);

    const slow = slowPut(upload_url, await pngImage(104, 24));
    await sleep(50);
    expect((await put(upload_url, bytes)).status).toBe(200);
    const completed = await app.call(`/v1/media/${id}/complete`, { method: 'POST', user });
    expect(await completed.json()).toMatchObject({ id: existingId, deduped: true });

    const answer = await slow.finish();
    expect(answer.status).toBe(404);
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'media_not_found' });
    expect(await filesOf(id)).toEqual([]);
    expect((await app.call(`/v1/media/${id}`, { user })).status).toBe(404);
  });

  it('answers a second upload racing the first on one URL with 403, and keeps the first', async () => {
    const user = uniqueUser();
    const first = await pngImage(108);
    const { id, upload_url } = await prepare(user);
    const slow = slowPut(upload_url, await pngImage(109, 24));
    await sleep(50);
    expect((await put(upload_url, first)).status).toBe(200);
    const answer = await slow.finish();
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'invalid_signature', error: 'upload URL was already used' });
    expect((await app.call(`/v1/media/${id}/complete`, { method: 'POST', user })).status).toBe(200);
    const served = await app.call(`/v1/media/${id}`, { user });
    expect(sha256(Buffer.from(await served.arrayBuffer()))).toBe(sha256(first));
  });

  it('checks a Content-MD5 the client sends, as S3 and GCS do: a mismatch stores nothing and the URL still takes the right bytes', async () => {
    const user = uniqueUser();
    const bytes = await pngImage(110);
    const { id, upload_url } = await prepare(user);
    const md5 = (body: Buffer) => createHash('md5').update(body).digest('base64');
    const putWithMd5 = (contentMd5: string) => fetch(upload_url, { method: 'PUT', headers: { 'content-type': 'image/png', 'content-md5': contentMd5 }, body: bytes });

    const wrong = await putWithMd5(md5(Buffer.from('other bytes')));
    expect(wrong.status).toBe(422);
    expect(await wrong.json()).toMatchObject({ code: 'checksum_mismatch', error: 'body does not match its Content-MD5' });
    const malformed = await putWithMd5('not-a-digest');
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({ code: 'invalid_request' });
    expect(await filesOf(id)).toEqual([]);

    expect((await putWithMd5(md5(bytes))).status).toBe(200);
    expect((await app.call(`/v1/media/${id}/complete`, { method: 'POST', user })).status).toBe(200);
    const served = await app.call(`/v1/media/${id}`, { user });
    expect(sha256(Buffer.from(await served.arrayBuffer()))).toBe(sha256(bytes));
  });

  it('removes the partial file of a client that goes away mid-upload, and the URL still takes a whole upload', async () => {
    const user = uniqueUser();
    const bytes = await noisyPng(200);
    const { id, upload_url } = await prepare(user, { bytes: bytes.length });

    for (let i = 0; i < 3; i++) {
      const broken = slowPut(upload_url, bytes, 40_000);
      await sleep(50);
      broken.abort();
    }
    let left = await filesOf(id);
    for (let i = 0; i < 50 && left.length; i++) {
      await sleep(100);
      left = await filesOf(id);
    }
    expect(left).toEqual([]);

    expect((await put(upload_url, bytes)).status).toBe(200);
    const completed = await app.call(`/v1/media/${id}/complete`, { method: 'POST', user });
    // The body too: a full CI run once answered 415 here, and the status alone did not say why.
    expect({ status: completed.status, body: await completed.text() }).toMatchObject({ status: 200 });
    expect(await filesOf(id)).toEqual([`images/${id}.png`]);
  });

  it('answers 503 storage_unavailable when the data directory is broken, and writes again once it is back', async () => {
    const user = uniqueUser();
    const ingest = async (seed: number) =>
      app.call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(await pngImage(seed)) } }) });

    // The images directory removed behind the service's back: the next write makes it again.
    await rm(images(), { recursive: true, force: true });
    expect((await ingest(105)).status).toBe(200);

    // Replaced by a file: every storage path answers 503, and nothing is half-written.
    const stored = (await (await ingest(106)).json()) as { id: string };
    await rm(images(), { recursive: true, force: true });
    await writeFile(images(), 'not a directory');
    try {
      const refused = await ingest(107);
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('2');
      expect(await refused.json()).toMatchObject({ code: 'storage_unavailable' });
      const read = await app.call(`/v1/media/${stored.id}`, { user });
      expect(read.status).toBe(503);
      expect(read.headers.get('retry-after')).toBe('2');
      const usage = (await (await app.call('/v1/usage', { user })).json()) as { objects: number };
      expect(usage.objects).toBe(2);
      // Readiness goes down too, saying what failed but not where on the disk.
      const ready = await fetch(`${app.baseUrl}/readyz`);
      expect(ready.status).toBe(503);
      expect(ready.headers.get('retry-after')).toBe('2');
      const report = await ready.text();
      expect(JSON.parse(report)).toMatchObject({ status: 'error', error: { storage: { status: 'down', message: 'EEXIST' } } });
      expect(report).not.toContain(app.dataDir);
    } finally {
      await rm(images(), { force: true });
    }
    expect((await ingest(107)).status).toBe(200);
  });

  it('takes /readyz down when nothing can be written to the data directory, though the directories are there', async () => {
    const probes = join(app.dataDir, 'objects', '.readiness');
    expect((await fetch(`${app.baseUrl}/readyz`)).status).toBe(200);
    // The probe leaves nothing behind, however many run at once.
    await Promise.all(Array.from({ length: 10 }, () => fetch(`${app.baseUrl}/readyz`)));
    expect(await readdir(probes)).toEqual([]);

    // As root no permission stops a write: a file where the probe's directory should be does.
    await rm(probes, { recursive: true, force: true });
    await writeFile(probes, 'not a directory');
    try {
      const ready = await fetch(`${app.baseUrl}/readyz`);
      expect(ready.status).toBe(503);
      expect(ready.headers.get('retry-after')).toBe('2');
      const report = await ready.text();
      expect(JSON.parse(report)).toMatchObject({ status: 'error', error: { storage: { status: 'down' } }, info: { database: { status: 'up' } } });
      expect(report).not.toContain(app.dataDir);
    } finally {
      await rm(probes, { force: true });
    }
    expect((await fetch(`${app.baseUrl}/readyz`)).status).toBe(200);
  });
});

/**
 * First-use copies (docs/api.md, "Complete on first use") on the paths the direct-upload tests
 * above do not take: an operator's purge of the owner, and new uploads of the same bytes while
 * the copy and its twin are both stored (and after the twin is gone).
 */
describe('first-use copies beside their twins', () => {
  const ADMIN_KEY = 'e2e-admin-key-first-use-copies-0123';
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ env: { MEDIA_ADMIN_KEY: ADMIN_KEY, MEDIA_RATE_LIMIT: '0' } });
  });
  afterAll(async () => {
    await app?.close();
  });

  const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
  const admin = (path: string, init: RequestInit = {}) => app.call(path, { ...init, key: null, headers: { 'x-media-admin-key': ADMIN_KEY } });
  const exists = async (key: string) => (await readdir(join(app.dataDir, 'objects', key.split('/')[0])).catch(() => [] as string[])).includes(key.split('/')[1]);
  const ingest = async (user: string, png: Buffer) => {
    const res = await app.call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(png) } }) });
    expect(res.status).toBe(200);
    return (await res.json()) as { id: string; deduped: boolean };
  };
  const reserveAndPut = async (user: string, png: Buffer) => {
    const res = await app.call('/v1/media/prepare-upload', { method: 'POST', user, body: JSON.stringify({ mime_type: 'image/png' }) });
    expect(res.status).toBe(200);
    const { id, upload_url } = (await res.json()) as { id: string; upload_url: string };
    expect((await fetch(upload_url, { method: 'PUT', headers: { 'content-type': 'image/png' }, body: png })).status).toBe(200);
    return id;
  };
  /** An ingested object and the first-use copy an old client's reservation of the same bytes becomes. */
  async function twinAndCopy(user: string, png: Buffer) {
    const original = (await ingest(user, png)).id;
    const copy = await reserveAndPut(user, png);
    const served = await app.call(`/v1/media/${copy}`, { user });
    expect(served.status).toBe(200);
    expect(sha256(Buffer.from(await served.arrayBuffer()))).toBe(sha256(png));
    expect(await exists(`images/${original}.png`)).toBe(true);
    expect(await exists(`images/${copy}.png`)).toBe(true);
    expect(await (await app.call('/v1/usage', { user })).json()).toMatchObject({ objects: 2, bytes: 2 * png.length });
    return { original, copy };
  }

  it('purges a first-use copy and its twin by owner: both rows and both files go, and usage returns to 0', async () => {
    const owner = uniqueUser('copy-purge');
    const png = await pngImage(140);
    const { original, copy } = await twinAndCopy(owner, png);

    const purged = await admin('/v1/admin/media/purge', { method: 'POST', body: JSON.stringify({ owner, dry_run: false }) });
    expect(purged.status).toBe(200);
    expect(await purged.json()).toEqual({ purged: [original, copy].sort(), count: 2, dry_run: false, truncated: false, failed: [] });

    const rows: unknown[] = await app.running.database.writer.query('SELECT id FROM media_api.media_objects WHERE created_by = $1', [owner]);
    expect(rows).toEqual([]);
    expect(await exists(`images/${original}.png`)).toBe(false);
    expect(await exists(`images/${copy}.png`)).toBe(false);
    const usage = await admin(`/v1/admin/usage?owner=${owner}`);
    expect(usage.status).toBe(200);
    expect(await usage.json()).toMatchObject({ owner, objects: 0, bytes: 0 });
    for (const id of [original, copy]) expect((await app.call(`/v1/media/${id}`, { user: owner })).status).toBe(404);
  });

  it('dedupes new uploads of the same bytes to one of the two ids while both are stored, and to the copy once its twin is gone', async () => {
    const owner = uniqueUser('copy-dedupe');
    const png = await pngImage(141);
    const { original, copy } = await twinAndCopy(owner, png);
    const pair = [original, copy];

    // One ingest, then several at once: each a dedupe hit, none an error.
    expect(pair).toContain((await ingest(owner, png)).id);
    const concurrent = await Promise.all(Array.from({ length: 6 }, () => ingest(owner, png)));
    for (const answer of concurrent) {
      expect(answer.deduped).toBe(true);
      expect(pair).toContain(answer.id);
    }
    // A new client's direct upload, completed explicitly: the same.
    const reservation = await reserveAndPut(owner, png);
    const completed = await app.call(`/v1/media/${reservation}/complete`, { method: 'POST', user: owner });
    expect(completed.status).toBe(200);
    const answer = (await completed.json()) as { id: string; deduped: boolean };
    expect(answer.deduped).toBe(true);
    expect(pair).toContain(answer.id);
    expect((await app.call(`/v1/media/${reservation}/metadata`, { user: owner })).status).toBe(404);
    expect(await (await app.call('/v1/usage', { user: owner })).json()).toMatchObject({ objects: 2, bytes: 2 * png.length });

    // The twin deleted: the copy is what the same bytes dedupe to, on every path.
    expect((await app.call(`/v1/media/${original}`, { method: 'DELETE', user: owner })).status).toBe(204);
    expect(await ingest(owner, png)).toMatchObject({ id: copy, deduped: true });
    const late = await reserveAndPut(owner, png);
    const lateCompleted = await app.call(`/v1/media/${late}/complete`, { method: 'POST', user: owner });
    expect(lateCompleted.status).toBe(200);
    expect(await lateCompleted.json()).toMatchObject({ id: copy, deduped: true });
    expect(await (await app.call('/v1/usage', { user: owner })).json()).toMatchObject({ objects: 1, bytes: png.length });
  });
});
