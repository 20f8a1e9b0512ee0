import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { SERVICE_KEY_ID, startTestApp, type TestApp } from '../support/test-app';
import { dataUrl, noisyPng, uniqueUser } from '../support/images';
import { auditRows } from '../support/audit-rows';
import { uniquePng } from '../support/unique-image';

jest.setTimeout(120_000);

/** Quotas against real PostgreSQL: concurrent uploads of one owner must never overshoot. */
describe('quotas', () => {
  let objectsApp: TestApp;
  let bytesApp: TestApp;

  beforeAll(async () => {
    objectsApp = await startTestApp({ env: { MEDIA_QUOTA_OBJECTS: '5', MEDIA_RATE_LIMIT: '0' } });
    bytesApp = await startTestApp({ env: { MEDIA_QUOTA_BYTES: '2000', MEDIA_RATE_LIMIT: '0' } });
  });
  afterAll(async () => {
    await objectsApp?.close();
    await bytesApp?.close();
  });

  const upload = async (app: TestApp, user: string, png: Buffer) =>
    app.call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(png) } }) });

  it('lets exactly the quota through out of 25 concurrent uploads, refusing the rest with 429 quota_exceeded', async () => {
    const owner = uniqueUser('quota');
    const images = await Promise.all(Array.from({ length: 25 }, () => uniquePng()));
    const responses = await Promise.all(images.map((png) => upload(objectsApp, owner, png)));
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(20);
    const refused = await responses.find((r) => r.status === 429)!.json() as any;
    // The unset byte quota is null, as GET /v1/usage answers it, not a 0 that reads as "nothing allowed".
    expect(refused).toMatchObject({ code: 'quota_exceeded', details: { quota_objects: 5, quota_bytes: null } });

    const usage = await (await objectsApp.call('/v1/usage', { user: owner })).json() as any;
    expect(usage).toEqual({ owner, objects: 5, bytes: expect.any(Number), quota_objects: 5, quota_bytes: null });
    const stored: Array<{ n: string }> = await objectsApp.running.database.writer.query('SELECT count(*) AS n FROM media_api.media_objects WHERE created_by = $1', [owner]);
    expect(Number(stored[0].n)).toBe(5);

    const rows = await auditRows(objectsApp, 'actor_id = $1 AND reason_code = $2', [SERVICE_KEY_ID, 'quota_exceeded']);
    expect(rows.length).toBeGreaterThanOrEqual(20);
    expect(rows[0]).toMatchObject({ action: 'media.ingest', outcome: 'denied' });
  });

  it('lets a dedupe hit through at the limit, and gives quota back on delete', async () => {
    const owner = uniqueUser('quota');
    const accepted: { id: string; png: Buffer }[] = [];
    for (let i = 0; i < 5; i++) {
      const png = await uniquePng();
      accepted.push({ id: (await (await upload(objectsApp, owner, png)).json() as any).id, png });
    }
    expect((await upload(objectsApp, owner, await uniquePng())).status).toBe(429);
    const again = await upload(objectsApp, owner, accepted[0].png);
    expect(again.status).toBe(200);
    expect(await again.json() as any).toMatchObject({ id: accepted[0].id, deduped: true });

    expect((await objectsApp.call(`/v1/media/${accepted[1].id}`, { method: 'DELETE', user: owner })).status).toBe(204);
    expect((await upload(objectsApp, owner, await uniquePng())).status).toBe(200);
    expect(await (await objectsApp.call('/v1/usage', { user: owner })).json() as any).toMatchObject({ objects: 5 });
  });

  it('charges new bytes before decoding them: past the quota even a corrupt image is 429; below it, 422 that leaves no row and no charge', async () => {
    const owner = uniqueUser('quota');
    const png = await uniquePng();
    const corrupt = png.subarray(0, png.length - 40);
    const refused = await upload(objectsApp, owner, corrupt);
    expect(refused.status).toBe(422);
    expect(((await refused.json()) as any).code).toBe('corrupt_image');
    const rows = async () =>
      Number(((await objectsApp.running.database.writer.query('SELECT count(*) AS n FROM media_api.media_objects WHERE created_by = $1', [owner])) as Array<{ n: string }>)[0].n);
    expect(await rows()).toBe(0);
    expect(await (await objectsApp.call('/v1/usage', { user: owner })).json()).toMatchObject({ objects: 0, bytes: 0 });
    for (let i = 0; i < 5; i++) expect((await upload(objectsApp, owner, await uniquePng())).status).toBe(200);
    // At the limit: the quota is decided before the decode (docs/api.md, "Dedupe and idempotency").
    const late = await upload(objectsApp, owner, corrupt);
    expect(late.status).toBe(429);
    expect(((await late.json()) as any).code).toBe('quota_exceeded');
    expect(await rows()).toBe(5);
  });

  it('counts a direct-upload reservation as an object', async () => {
    const owner = uniqueUser('quota');
    for (let i = 0; i < 5; i++) {
      const res = await objectsApp.call('/v1/media/prepare-upload', { method: 'POST', user: owner, body: JSON.stringify({ mime_type: 'image/png' }) });
      expect(res.status).toBe(200);
    }
    const over = await objectsApp.call('/v1/media/prepare-upload', { method: 'POST', user: owner, body: JSON.stringify({ mime_type: 'image/png' }) });
    expect(over.status).toBe(429);
    expect((await over.json() as any).code).toBe('quota_exceeded');
  });

  it('never stores more bytes than the byte quota under 20 concurrent uploads', async () => {
    const owner = uniqueUser('bytes');
    const images = await Promise.all(Array.from({ length: 20 }, () => uniquePng(10)));
    const responses = await Promise.all(images.map((png) => upload(bytesApp, owner, png)));
    const accepted = await Promise.all(responses.filter((r) => r.status === 200).map((r) => r.json() as any));
    expect(responses.every((r) => r.status === 200 || r.status === 429)).toBe(true);
    expect(accepted.length).toBeGreaterThan(0);
    expect(accepted.length).toBeLessThan(20);
    const total = accepted.reduce((sum: number, m: { bytes: number }) => sum + m.bytes, 0);
    expect(total).toBeLessThanOrEqual(2000);
    const usage = await (await bytesApp.call('/v1/usage', { user: owner })).json() as any;
    expect(usage).toMatchObject({ objects: accepted.length, bytes: total, quota_bytes: 2000, quota_objects: null });
    // The refused ones left nothing behind, in the table or in storage.
    const rows: Array<{ n: string }> = await bytesApp.running.database.writer.query('SELECT count(*) AS n FROM media_api.media_objects WHERE created_by = $1', [owner]);
    expect(Number(rows[0].n)).toBe(accepted.length);
  });

  /**
   * An old client's reservation used without `complete` while its owner already has the same
   * bytes becomes a first-use copy (docs/api.md, "Complete on first use"), unless that copy would
   * go past a quota: then the first use answers the existing object and drops the reservation.
   */
  describe('first-use copies at the limit', () => {
    const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
    const prepare = async (app: TestApp, user: string, body: Record<string, unknown> = {}) => {
      const res = await app.call('/v1/media/prepare-upload', { method: 'POST', user, body: JSON.stringify({ mime_type: 'image/png', ...body }) });
      expect(res.status).toBe(200);
      const prepared = (await res.json()) as { id: string; upload_url: string };
      return prepared;
    };
    const put = async (url: string, png: Buffer) => expect((await fetch(url, { method: 'PUT', headers: { 'content-type': 'image/png' }, body: png })).status).toBe(200);
    const exists = (path: string) => stat(path).then(() => true, () => false);

    /** The reservation's first use answers `png` (the twin's bytes), then its id is gone: row, files, later uses. */
    async function expectFallback(app: TestApp, owner: string, reservation: string, png: Buffer, usage: { objects: number; bytes: number }) {
      const first = await app.call(`/v1/media/${reservation}`, { user: owner });
      expect(first.status).toBe(200);
      expect(sha256(Buffer.from(await first.arrayBuffer()))).toBe(sha256(png));
      const rows: unknown[] = await app.running.database.writer.query('SELECT id FROM media_api.media_objects WHERE id = $1', [reservation]);
      expect(rows).toEqual([]);
      expect(await exists(join(app.dataDir, 'objects', 'images', `${reservation}.png`))).toBe(false);
      expect(await exists(join(app.dataDir, 'objects', 'uploads', `${reservation}.png`))).toBe(false);
      expect(await (await app.call('/v1/usage', { user: owner })).json()).toMatchObject(usage);
      // Later uses of the reservation's id: 404, as documented.
      expect((await app.call(`/v1/media/${reservation}`, { user: owner })).status).toBe(404);
      expect((await app.call(`/v1/media/${reservation}/presign`, { user: owner })).status).toBe(404);
      const resolved = await app.call('/v1/media/resolve', { method: 'POST', user: owner, body: JSON.stringify({ ids: [reservation], keep_unresolved: true }) });
      expect(await resolved.json()).toMatchObject({ media: [], unresolved: [reservation] });
    }

    it('byte quota with room for one copy: the first use answers the existing object and drops the reservation', async () => {
      const png = await noisyPng(40);
      const quotaApp = await startTestApp({ env: { MEDIA_QUOTA_BYTES: String(Math.floor(png.length * 1.5)), MEDIA_RATE_LIMIT: '0' } });
      try {
        // A client that declares nothing: the reservation counts one object and no bytes.
        const owner = uniqueUser('copy-bytes');
        const ingested = await upload(quotaApp, owner, png);
        expect(ingested.status).toBe(200);
        const original = ((await ingested.json()) as { id: string }).id;
        const { id, upload_url } = await prepare(quotaApp, owner);
        await put(upload_url, png);
        await expectFallback(quotaApp, owner, id, png, { objects: 1, bytes: png.length });
        expect((await quotaApp.call(`/v1/media/${original}`, { user: owner })).status).toBe(200);

        // A client that declares the size and hash, uploading the same bytes twice: the second
        // reservation is let past the quota beside the first (only one of them can be kept), so
        // its first use must not keep it as a copy.
        const declaring = uniqueUser('copy-bytes-declared');
        const declared = { bytes: png.length, sha256: sha256(png) };
        const one = await prepare(quotaApp, declaring, declared);
        const two = await prepare(quotaApp, declaring, declared);
        await put(one.upload_url, png);
        await put(two.upload_url, png);
        expect((await quotaApp.call(`/v1/media/${one.id}`, { user: declaring })).status).toBe(200);
        await expectFallback(quotaApp, declaring, two.id, png, { objects: 1, bytes: png.length });
      } finally {
        await quotaApp.close();
      }
    });

    it('object quota: a copy that would go past MEDIA_QUOTA_OBJECTS takes the same fallback', async () => {
      const owner = uniqueUser('copy-objects');
      for (let i = 0; i < 4; i++) expect((await upload(objectsApp, owner, await uniquePng())).status).toBe(200);
      // The fifth object's bytes, declared by hash in two reservations: the second one is let past
      // the object quota beside the first, as a twin's pending row is.
      const png = await uniquePng();
      const one = await prepare(objectsApp, owner, { sha256: sha256(png) });
      const two = await prepare(objectsApp, owner, { sha256: sha256(png) });
      await put(one.upload_url, png);
      await put(two.upload_url, png);
      expect((await objectsApp.call(`/v1/media/${one.id}`, { user: owner })).status).toBe(200);
      await expectFallback(objectsApp, owner, two.id, png, { objects: 5, bytes: expect.any(Number) });
      expect((await objectsApp.call(`/v1/media/${one.id}`, { user: owner })).status).toBe(200);
    });
  });

  describe('on every ingest path', () => {
    let origin: Server;
    let originUrl = '';
    const served = new Map<string, Buffer>();
    beforeAll(async () => {
      origin = createServer((req, res) => {
        const body = served.get(req.url ?? '');
        if (body) res.writeHead(200, { 'content-type': 'image/png' }).end(body);
        else res.writeHead(404).end();
      });
      await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
      originUrl = `http://127.0.0.1:${(origin.address() as { port: number }).port}`;
    });
    afterAll(() => new Promise<void>((resolve) => origin.close(() => resolve())));

    const ingestPaths: Record<string, (app: TestApp, user: string, png: Buffer) => Promise<Response>> = {
      data_url: upload,
      remote_url: (app, user, png) => {
        const path = `/${served.size}.png`;
        served.set(path, png);
        return app.call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'remote_url', url: originUrl + path } }) });
      },
      multipart: (app, user, png) => {
        const form = new FormData();
        form.append('file', new Blob([png], { type: 'image/png' }), 'image.png');
        return app.call('/v1/media/upload', { method: 'POST', user, body: form });
      },
      direct_upload: async (app, user, png) => {
        const prepared = await app.call('/v1/media/prepare-upload', { method: 'POST', user, body: JSON.stringify({ mime_type: 'image/png' }) });
        if (prepared.status !== 200) return prepared;
        const { id, upload_url } = (await prepared.json()) as { id: string; upload_url: string };
        expect((await fetch(upload_url, { method: 'PUT', headers: { 'content-type': 'image/png' }, body: png })).status).toBe(200);
        return app.call(`/v1/media/${id}/complete`, { method: 'POST', user });
      },
    };

    // 12 uploads of about 4.9 KB at once against a 20,000-byte quota: exactly as many as fit.
    it.each(Object.keys(ingestPaths))('%s: concurrent uploads never store more than the byte quota', async (path) => {
      const quotaApp = await startTestApp({ env: { MEDIA_QUOTA_BYTES: '20000', MEDIA_RATE_LIMIT: '0', MEDIA_REMOTE_FETCH_ALLOW_CIDRS: '127.0.0.1/32' } });
      try {
        const owner = uniqueUser(`bytes-${path}`);
        const images = await Promise.all(Array.from({ length: 12 }, () => noisyPng(40)));
        const responses = await Promise.all(images.map((png) => ingestPaths[path](quotaApp, owner, png)));
        const answers = await Promise.all(responses.map(async (r) => ({ status: r.status, body: (await r.json()) as any })));
        expect(answers.every((a) => a.status === 200 || (a.status === 429 && a.body.code === 'quota_exceeded'))).toBe(true);
        const accepted = answers.filter((a) => a.status === 200);
        const total = accepted.reduce((sum, a) => sum + (a.body.bytes as number), 0);
        expect(accepted.length).toBe(Math.floor(20000 / images[0].length));
        expect(total).toBeLessThanOrEqual(20000);
        expect(await (await quotaApp.call('/v1/usage', { user: owner })).json()).toMatchObject({ objects: accepted.length, bytes: total });
        const rows: Array<{ n: string }> = await quotaApp.running.database.writer.query('SELECT count(*) AS n FROM media_api.media_objects WHERE created_by = $1', [owner]);
        expect(Number(rows[0].n)).toBe(accepted.length);
      } finally {
        await quotaApp.close();
      }
    });
  });
});
