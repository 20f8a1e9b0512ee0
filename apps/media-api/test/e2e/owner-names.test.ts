import { randomBytes } from 'node:crypto';
import { keyId } from '../../src/auth/key-ring';
import { SERVICE_KEY, SERVICE_KEY_ID, startTestApp, type TestApp } from '../support/test-app';
import { dataUrl, uniqueUser } from '../support/images';
import { uniquePng } from '../support/unique-image';
import { AUDIENCE, ISSUER, JwtIssuer } from '../support/jwt-issuer';

jest.setTimeout(120_000);

const ADMIN_KEY = 'e2e-owner-names-admin-key-0123456789';
const SERVICE_OWNER = `service:${SERVICE_KEY_ID}`;
const ADMIN_OWNER = `admin:${keyId(ADMIN_KEY, 'admin-key')}`;

const ingestBody = (png: Buffer, extra: Record<string, unknown> = {}) => JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(png) }, ...extra });

/**
 * What a service or admin uploads for nobody belongs to `service:<key id>` or `admin:<key id>`.
 * No end user (token subject) and no user a service names (header or body) may be that owner:
 * otherwise they would read its objects and dedupe into them.
 */
describe('reserved owner names', () => {
  let issuer: JwtIssuer;
  let app: TestApp;

  beforeAll(async () => {
    issuer = await JwtIssuer.start();
    app = await startTestApp({
      env: { AUTH_ENABLED: 'true', AUTH_ISSUER: ISSUER, AUTH_JWKS_URL: issuer.jwksUrl, ACCOUNT: AUDIENCE, MEDIA_ADMIN_KEY: ADMIN_KEY, MEDIA_RATE_LIMIT: '0' },
    });
  });
  afterAll(async () => {
    await app?.close();
    await issuer?.close();
  });

  /** An object the service uploads for nobody: owned by `service:<key id>`. */
  async function serviceObject(png: Buffer): Promise<string> {
    const res = await app.call('/v1/media', { method: 'POST', body: ingestBody(png) });
    expect(res.status).toBe(200);
    return (await res.json() as any).id;
  }

  it("the service's own uploads belong to service:<key id>", async () => {
    await serviceObject(await uniquePng());
    const usage = await (await app.call('/v1/usage')).json() as any;
    expect(usage.owner).toBe(SERVICE_OWNER);
  });

  it('refuses a token whose subject is a service or admin owner (401), and never serves it their objects', async () => {
    const png = await uniquePng();
    const id = await serviceObject(png);
    const adminUpload = await fetch(`${app.baseUrl}/v1/media`, { method: 'POST', headers: { 'x-media-admin-key': ADMIN_KEY, 'content-type': 'application/json' }, body: ingestBody(await uniquePng()) });
    expect(adminUpload.status).toBe(200);
    const adminId = (await adminUpload.json() as any).id;

    for (const [sub, object] of [[SERVICE_OWNER, id], [ADMIN_OWNER, adminId]]) {
      const token = await issuer.mint({ sub });
      for (const path of [`/v1/media/${object}`, `/v1/media/${object}/metadata`, '/v1/usage']) {
        const res = await fetch(app.baseUrl + path, { headers: { authorization: `Bearer ${token}` } });
        expect(res.status).toBe(401);
        expect(await res.json()).toMatchObject({ code: 'unauthorized', error: expect.stringContaining('reserved') });
      }
      // Nor may it upload as that owner (which would dedupe into the owner's object).
      const upload = await fetch(`${app.baseUrl}/v1/media`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: ingestBody(png) });
      expect(upload.status).toBe(401);
    }
  });

  it('refuses a service naming a service or admin owner in X-Jan-User-Id or user_id (400 invalid_request)', async () => {
    const png = await uniquePng();
    const id = await serviceObject(png);
    for (const named of [SERVICE_OWNER, ADMIN_OWNER, 'service:service-key-1']) {
      for (const path of [`/v1/media/${id}`, `/v1/media/${id}/presign`, '/v1/usage']) {
        const res = await app.call(path, { user: named });
        expect(res.status).toBe(400);
        expect(await res.json()).toMatchObject({ code: 'invalid_request', error: expect.stringContaining('reserved') });
      }
      const resolved = await app.call('/v1/media/resolve', { method: 'POST', user: named, body: JSON.stringify({ ids: [id] }) });
      expect(resolved.status).toBe(400);

      // The body's user_id: JSON ingest (the same bytes would otherwise dedupe into the service's object), multipart, prepare-upload.
      const ingest = await app.call('/v1/media', { method: 'POST', body: ingestBody(png, { user_id: named }) });
      expect(ingest.status).toBe(400);
      expect(await ingest.json()).toMatchObject({ code: 'invalid_request', error: expect.stringContaining('reserved') });
      const form = new FormData();
      form.append('user_id', named);
      form.append('file', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'x.png');
      const multipart = await app.call('/v1/media/upload', { method: 'POST', body: form });
      expect(multipart.status).toBe(400);
      expect((await multipart.json() as any).code).toBe('invalid_request');
      const prepared = await app.call('/v1/media/prepare-upload', { method: 'POST', body: JSON.stringify({ mime_type: 'image/png', user_id: named }) });
      expect(prepared.status).toBe(400);
      expect((await prepared.json() as any).code).toBe('invalid_request');
    }
    // Nothing was stored for anyone by those attempts: the service still owns exactly the one object of these bytes.
    const rows: Array<{ created_by: string }> = await app.running.database.writer.query(
      'SELECT created_by FROM media_api.media_objects WHERE sha256 = (SELECT sha256 FROM media_api.media_objects WHERE id = $1)',
      [id],
    );
    expect(rows).toEqual([{ created_by: SERVICE_OWNER }]);
  });

  it("keeps every other owner's objects invisible: a user, and a service acting for them, see only their own", async () => {
    const alice = uniqueUser('alice');
    const bob = uniqueUser('bob');
    const aliceToken = await issuer.mint({ sub: alice });
    const bobToken = await issuer.mint({ sub: bob });
    const serviceId = await serviceObject(await uniquePng());
    const aliceUpload = await fetch(`${app.baseUrl}/v1/media`, { method: 'POST', headers: { authorization: `Bearer ${aliceToken}`, 'content-type': 'application/json' }, body: ingestBody(await uniquePng()) });
    const aliceId = (await aliceUpload.json() as any).id;

    for (const id of [serviceId, aliceId]) {
      const asBob = await fetch(`${app.baseUrl}/v1/media/${id}`, { headers: { authorization: `Bearer ${bobToken}` } });
      expect(asBob.status).toBe(404);
      expect((await asBob.json() as any).code).toBe('media_not_found');
      const forBob = await app.call(`/v1/media/${id}`, { user: bob });
      expect(forBob.status).toBe(404);
    }
    // Alice's own token reads hers, not the service's.
    expect((await fetch(`${app.baseUrl}/v1/media/${aliceId}`, { headers: { authorization: `Bearer ${aliceToken}` } })).status).toBe(200);
    expect((await fetch(`${app.baseUrl}/v1/media/${serviceId}`, { headers: { authorization: `Bearer ${aliceToken}` } })).status).toBe(404);
    // A user id that merely contains the word is an ordinary user.
    const lookalike = `servicex:${randomBytes(4).toString('hex')}`;
    expect((await app.call(`/v1/media/${serviceId}`, { user: lookalike })).status).toBe(404);
    expect((await app.call('/v1/usage', { user: lookalike })).status).toBe(200);
  });

  it("lets an admin list, count and purge a service's or admin's own objects by ?owner= (reserved only as user ids)", async () => {
    const id = await serviceObject(await uniquePng());
    const asAdmin = (path: string, init: RequestInit = {}) =>
      fetch(app.baseUrl + path, { ...init, headers: { 'x-media-admin-key': ADMIN_KEY, 'content-type': 'application/json' } });
    const listed = await asAdmin(`/v1/admin/media?owner=${encodeURIComponent(SERVICE_OWNER)}&limit=200`);
    expect(listed.status).toBe(200);
    const items = ((await listed.json()) as any).items as Array<{ id: string; owner: string }>;
    expect(items.map((item) => item.id)).toContain(id);
    for (const item of items) expect(item.owner).toBe(SERVICE_OWNER);
    const usage = await asAdmin(`/v1/admin/usage?owner=${encodeURIComponent(SERVICE_OWNER)}`);
    expect(usage.status).toBe(200);
    expect(await usage.json()).toMatchObject({ owner: SERVICE_OWNER, objects: items.length });
    const dry = await asAdmin('/v1/admin/media/purge', { method: 'POST', body: JSON.stringify({ ids: [id], owner: SERVICE_OWNER, dry_run: true }) });
    expect(dry.status).toBe(200);
    expect(await dry.json()).toMatchObject({ purged: [id], dry_run: true });
    const purged = await asAdmin('/v1/admin/media/purge', { method: 'POST', body: JSON.stringify({ ids: [id], owner: SERVICE_OWNER }) });
    expect(purged.status).toBe(200);
    expect(await purged.json()).toMatchObject({ purged: [id], dry_run: false });
    expect((await app.call(`/v1/media/${id}`)).status).toBe(404);
  });

  it('the service acting for nobody still reads its own objects', async () => {
    const png = await uniquePng();
    const id = await serviceObject(png);
    const res = await app.call(`/v1/media/${id}`, { key: SERVICE_KEY });
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer())).toEqual(png);
  });
});
