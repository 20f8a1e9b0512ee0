import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { keyId } from '../../src/auth/key-ring';
import { SERVICE_KEY, SERVICE_KEY_ID, type TestApp } from '../support/test-app';
import { dataUrl, uniqueUser } from '../support/images';
import { uniquePng } from '../support/unique-image';
import { auditRows } from '../support/audit-rows';
import { ADMIN_ROLE, JwtIssuer, startJwtTestApp } from '../support/jwt-issuer';

jest.setTimeout(120_000);

const ADMIN_KEY = 'e2e-admin-key-0123456789abcdef';
const GATEWAY_USER_KEY = 'e2e-gateway-user-key-0123456789';
const GATEWAY_ADMIN_KEY = 'e2e-gateway-admin-key-0123456789';
const ORIGIN = 'https://app.jan.test';

const alice = uniqueUser('alice');
const bob = uniqueUser('bob');
const operator = uniqueUser('ops');

type Expect = 'allowed' | 'hidden' | 'unauthenticated';
interface Caller {
  name: string;
  expect: Expect;
  headers(): Promise<Record<string, string>>;
}

let issuer: JwtIssuer;
let app: TestApp;

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

function callers(): Caller[] {
  return [
    { name: 'owner (JWT)', expect: 'allowed', headers: async () => bearer(await issuer.mint({ sub: alice })) },
    { name: 'owner (ES256 JWT)', expect: 'allowed', headers: async () => bearer(await issuer.mint({ sub: alice, alg: 'ES256' })) },
    { name: 'owner (gateway X-API-Key)', expect: 'allowed', headers: async () => ({ 'x-api-key': GATEWAY_USER_KEY }) },
    { name: 'other user', expect: 'hidden', headers: async () => bearer(await issuer.mint({ sub: bob })) },
    {
      name: 'other user naming the owner in X-Jan-User-Id',
      expect: 'hidden',
      headers: async () => ({ ...bearer(await issuer.mint({ sub: bob })), 'x-jan-user-id': alice }),
    },
    { name: 'service for owner', expect: 'allowed', headers: async () => ({ 'x-media-service-key': SERVICE_KEY, 'x-jan-user-id': alice }) },
    { name: 'service for someone else', expect: 'hidden', headers: async () => ({ 'x-media-service-key': SERVICE_KEY, 'x-jan-user-id': bob }) },
    { name: 'admin (JWT role)', expect: 'allowed', headers: async () => bearer(await issuer.mint({ sub: operator, roles: [ADMIN_ROLE] })) },
    { name: 'admin (X-Media-Admin-Key)', expect: 'allowed', headers: async () => ({ 'x-media-admin-key': ADMIN_KEY }) },
    { name: 'admin (gateway X-API-Key)', expect: 'allowed', headers: async () => ({ 'x-api-key': GATEWAY_ADMIN_KEY }) },
    { name: 'anonymous', expect: 'unauthenticated', headers: async () => ({}) },
    { name: 'expired token', expect: 'unauthenticated', headers: async () => bearer(await issuer.mint({ sub: alice, expiresIn: -600 })) },
    { name: 'wrong audience', expect: 'unauthenticated', headers: async () => bearer(await issuer.mint({ sub: alice, aud: 'another-client' })) },
    { name: 'wrong issuer', expect: 'unauthenticated', headers: async () => bearer(await issuer.mint({ sub: alice, iss: 'http://127.0.0.1/realms/other' })) },
    { name: 'unknown kid', expect: 'unauthenticated', headers: async () => bearer(await issuer.mint({ sub: alice, unpublished: true, kid: 'never-published' })) },
    { name: 'alg none', expect: 'unauthenticated', headers: async () => bearer(issuer.unsigned(alice)) },
    { name: 'HS256 with the public key', expect: 'unauthenticated', headers: async () => bearer(issuer.hmacWithPublicKey(alice)) },
    { name: 'tampered signature', expect: 'unauthenticated', headers: async () => bearer(await issuer.tampered(bob, alice)) },
    { name: 'wrong service key', expect: 'unauthenticated', headers: async () => ({ 'x-media-service-key': 'not-the-service-key-0123', 'x-jan-user-id': alice }) },
    { name: 'wrong admin key', expect: 'unauthenticated', headers: async () => ({ 'x-media-admin-key': 'not-the-admin-key-0123456' }) },
  ];
}

/** An object of alice's, made fresh for each cell so destructive calls do not interfere. */
async function aliceObject(): Promise<string> {
  const res = await app.call('/v1/media', { method: 'POST', user: alice, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(await uniquePng()) } }) });
  expect(res.status).toBe(200);
  return (await res.json() as any).id;
}

/** A direct upload of alice's with its bytes in place, waiting for complete. */
async function aliceUpload(): Promise<string> {
  const prepared = await (await app.call('/v1/media/prepare-upload', { method: 'POST', user: alice, body: JSON.stringify({ mime_type: 'image/png' }) })).json() as any;
  const put = await fetch(prepared.upload_url, { method: 'PUT', headers: { 'content-type': 'image/png' }, body: await uniquePng() });
  expect(put.status).toBe(200);
  return prepared.id;
}

interface Endpoint {
  name: string;
  prepare(): Promise<string>;
  request(id: string): { method: string; path: string; body?: unknown };
  ok: number;
}

const endpoints: Endpoint[] = [
  { name: 'GET /v1/media/:id', prepare: aliceObject, request: (id) => ({ method: 'GET', path: `/v1/media/${id}` }), ok: 200 },
  { name: 'GET /v1/media/:id/presign', prepare: aliceObject, request: (id) => ({ method: 'GET', path: `/v1/media/${id}/presign` }), ok: 200 },
  { name: 'GET /v1/media/:id/metadata', prepare: aliceObject, request: (id) => ({ method: 'GET', path: `/v1/media/${id}/metadata` }), ok: 200 },
  { name: 'POST /v1/media/resolve (ids)', prepare: aliceObject, request: (id) => ({ method: 'POST', path: '/v1/media/resolve', body: { ids: [id] } }), ok: 200 },
  {
    name: 'POST /v1/media/resolve (payload)',
    prepare: aliceObject,
    request: (id) => ({ method: 'POST', path: '/v1/media/resolve', body: { payload: { messages: [{ content: [{ image_url: { url: `data:image/png;${id}` } }] }] } } }),
    ok: 200,
  },
  { name: 'PUT /v1/media/:id/pin', prepare: aliceObject, request: (id) => ({ method: 'PUT', path: `/v1/media/${id}/pin` }), ok: 200 },
  { name: 'DELETE /v1/media/:id/pin', prepare: aliceObject, request: (id) => ({ method: 'DELETE', path: `/v1/media/${id}/pin` }), ok: 200 },
  { name: 'POST /v1/media/:id/complete', prepare: aliceUpload, request: (id) => ({ method: 'POST', path: `/v1/media/${id}/complete` }), ok: 200 },
  { name: 'DELETE /v1/media/:id', prepare: aliceObject, request: (id) => ({ method: 'DELETE', path: `/v1/media/${id}` }), ok: 204 },
];

async function send(caller: Caller, request: { method: string; path: string; body?: unknown }, extra: Record<string, string> = {}): Promise<Response> {
  const headers: Record<string, string> = { ...(await caller.headers()), ...extra };
  if (request.body !== undefined) headers['content-type'] = 'application/json';
  return fetch(app.baseUrl + request.path, { method: request.method, headers, body: request.body === undefined ? undefined : JSON.stringify(request.body) });
}

let close: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ issuer, app, close } = await startJwtTestApp({
    MEDIA_ADMIN_KEY: ADMIN_KEY,
    MEDIA_API_KEYS: `${GATEWAY_USER_KEY}:user:${alice},${GATEWAY_ADMIN_KEY}:admin:gateway-ops`,
    MEDIA_RATE_LIMIT: '0',
    MEDIA_CORS_ORIGINS: ORIGIN,
  }));
});

afterAll(async () => {
  await close?.();
});

describe('access matrix: media endpoints × callers', () => {
  const all = callers();
  let notFoundBody: unknown;

  beforeAll(async () => {
    const res = await app.call('/v1/media/jan_01hqr8v9k2x3f4g5h6j7k8m9n0', { user: alice });
    notFoundBody = { ...(await res.json() as any), request_id: undefined };
  });

  for (const endpoint of endpoints) {
    describe(endpoint.name, () => {
      it.each(all.map((c) => [c.name, c] as const))('%s', async (_name, caller) => {
        const id = await endpoint.prepare();
        const res = await send(caller, endpoint.request(id));
        const text = await res.text();
        if (caller.expect === 'allowed') {
          expect({ status: res.status, text: res.status === endpoint.ok ? '' : text }).toEqual({ status: endpoint.ok, text: '' });
          // Nothing but an admin endpoint names storage: signed URLs are the one place an object's
          // location appears, because they are the credential to fetch it.
          const withoutUrls = text.replace(/"(https?|data):[^"]*"/g, '""');
          expect(withoutUrls).not.toMatch(/images\/|storage_key|storage_provider|bucket/);
          return;
        }
        if (caller.expect === 'unauthenticated') {
          expect(res.status).toBe(401);
          expect(JSON.parse(text)).toMatchObject({ code: 'unauthorized' });
        } else {
          expect(res.status).toBe(404);
          const body = { ...JSON.parse(text), request_id: undefined };
          if (endpoint.name.startsWith('POST /v1/media/resolve')) expect(body).toEqual({ ...(notFoundBody as object), details: { ids: [id] } });
          else expect(body).toEqual(notFoundBody);
        }
        // Refused calls changed nothing: the object is still alice's and still there.
        const still = await app.call(`/v1/media/${id}/metadata`, { user: alice });
        expect(still.status).toBe(200);
      });
    });
  }

  it('answers a foreign id with the same database work as a missing one (no timing oracle)', async () => {
    const id = await aliceObject();
    const bobToken = bearer(await issuer.mint({ sub: bob }));
    const statements = async (path: string) => {
      const seen: string[] = [];
      const stop = app.running.database.onQuery((sql) => {
        if (sql.includes('media_objects')) seen.push(sql.replace(/\s+/g, ' ').trim());
      });
      const res = await fetch(app.baseUrl + path, { headers: bobToken });
      stop();
      expect(res.status).toBe(404);
      return seen;
    };
    const foreign = await statements(`/v1/media/${id}`);
    const missing = await statements('/v1/media/jan_01hqr8v9k2x3f4g5h6j7k8m9n0');
    expect(foreign).toHaveLength(1);
    expect(foreign).toEqual(missing);
  });

  it('writes a denied row to the audit trail for every refused id, with the request id', async () => {
    const id = await aliceObject();
    const res = await fetch(`${app.baseUrl}/v1/media/${id}/presign`, {
      headers: { ...bearer(await issuer.mint({ sub: bob })), traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
    });
    expect(res.status).toBe(404);
    const rows = await auditRows(app, 'media_id = $1 AND outcome = $2', [id, 'denied']);
    expect(rows).toEqual([
      expect.objectContaining({
        actor_kind: 'user',
        actor_id: bob,
        action: 'media.presign',
        reason_code: 'forbidden',
        request_id: res.headers.get('x-request-id'),
        trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
        client_ip: '127.0.0.1',
      }),
    ]);
  });
});

describe('resolve refuses placeholders the caller may not read', () => {
  it('fails with the refused ids, or leaves them untouched with keep_unresolved', async () => {
    const mine = await aliceObject();
    const theirs = await aliceObject();
    const bobToken = bearer(await issuer.mint({ sub: bob }));
    const bobImage = await (
      await fetch(`${app.baseUrl}/v1/media`, {
        method: 'POST',
        headers: { ...bobToken, 'content-type': 'application/json' },
        body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(await uniquePng()) } }),
      })
    ).json() as any;
    const payload = { a: `data:image/png;${bobImage.id}`, b: `data:image/png;${theirs}`, c: `data:image/png;base64,${mine}` };
    const refused = await fetch(`${app.baseUrl}/v1/media/resolve`, { method: 'POST', headers: { ...bobToken, 'content-type': 'application/json' }, body: JSON.stringify({ payload }) });
    expect(refused.status).toBe(404);
    expect((await refused.json() as any).details.ids.sort()).toEqual([mine, theirs].sort());
    const kept = await (
      await fetch(`${app.baseUrl}/v1/media/resolve`, {
        method: 'POST',
        headers: { ...bobToken, 'content-type': 'application/json' },
        body: JSON.stringify({ payload, keep_unresolved: true }),
      })
    ).json() as any;
    expect(kept.payload.a).toMatch(/^http:\/\//);
    expect(kept.payload.b).toBe(payload.b);
    expect(kept.payload.c).toBe(payload.c);
    expect(kept.unresolved.sort()).toEqual([mine, theirs].sort());
  });
});

describe('ownership', () => {
  it('lets a token subject win over user_id in the body, and keeps dedupe per owner', async () => {
    const png = await uniquePng();
    const aliceToken = bearer(await issuer.mint({ sub: alice }));
    const res = await fetch(`${app.baseUrl}/v1/media`, {
      method: 'POST',
      headers: { ...aliceToken, 'content-type': 'application/json' },
      body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(png) }, user_id: bob }),
    });
    const { id } = await res.json() as any;
    expect((await fetch(`${app.baseUrl}/v1/media/${id}`, { headers: bearer(await issuer.mint({ sub: bob })) })).status).toBe(404);
    expect((await fetch(`${app.baseUrl}/v1/media/${id}`, { headers: aliceToken })).status).toBe(200);
    const byBob = await (
      await fetch(`${app.baseUrl}/v1/media`, {
        method: 'POST',
        headers: { ...bearer(await issuer.mint({ sub: bob })), 'content-type': 'application/json' },
        body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(png) } }),
      })
    ).json() as any;
    expect(byBob).toMatchObject({ deduped: false });
    expect(byBob.id).not.toBe(id);
  });
});

describe('admin endpoints × callers', () => {
  const adminEndpoints: Endpoint[] = [
    { name: 'GET /v1/admin/media/:id', prepare: aliceObject, request: (id) => ({ method: 'GET', path: `/v1/admin/media/${id}` }), ok: 200 },
    { name: 'GET /v1/admin/media', prepare: aliceObject, request: () => ({ method: 'GET', path: `/v1/admin/media?owner=${alice}&limit=2` }), ok: 200 },
    { name: 'POST /v1/admin/media/purge', prepare: aliceObject, request: (id) => ({ method: 'POST', path: '/v1/admin/media/purge', body: { ids: [id], dry_run: true } }), ok: 200 },
    { name: 'POST /v1/admin/media/:id/reissue', prepare: aliceObject, request: (id) => ({ method: 'POST', path: `/v1/admin/media/${id}/reissue`, body: {} }), ok: 200 },
    { name: 'GET /v1/admin/usage', prepare: aliceObject, request: () => ({ method: 'GET', path: `/v1/admin/usage?owner=${alice}` }), ok: 200 },
  ];
  let unknownRouteBody: unknown;

  beforeAll(async () => {
    const res = await app.call('/v1/admin/no-such-route', { user: alice });
    expect(res.status).toBe(404);
    unknownRouteBody = { ...(await res.json() as any), request_id: undefined };
  });

  for (const endpoint of adminEndpoints) {
    describe(endpoint.name, () => {
      it.each(callers().map((c) => [c.name, c] as const))('%s', async (name, caller) => {
        const id = await endpoint.prepare();
        const res = await send(caller, endpoint.request(id));
        const body = await res.json() as any;
        const isAdmin = name.startsWith('admin (');
        if (isAdmin) expect(res.status).toBe(endpoint.ok);
        else if (caller.expect === 'unauthenticated') expect(res.status).toBe(401);
        else expect({ ...body, request_id: undefined }).toEqual(unknownRouteBody);
      });
    });
  }

  it('describes an object with its storage location and recent audit events', async () => {
    const id = await aliceObject();
    await app.call(`/v1/media/${id}/pin`, { method: 'PUT', user: alice });
    const events = await import('@jan/domain');
    await (app.running.app.get(events.MediaEvents) as unknown as { flush(): Promise<void> }).flush();
    const res = await fetch(`${app.baseUrl}/v1/admin/media/${id}`, { headers: { 'x-media-admin-key': ADMIN_KEY } });
    const body = await res.json() as any;
    expect(body).toMatchObject({
      id,
      owner: alice,
      storage_provider: 'local',
      storage_key: expect.stringMatching(new RegExp(`^images/${id}\\.png$`)),
      original_sha256: null,
      status: 'ready',
      pinned: true,
      retention_until: null,
    });
    expect(body.events.map((e: { action: string }) => e.action)).toEqual(['media.pin', 'media.ingest']);
    expect(body.events[0]).toMatchObject({ actor: `service:${SERVICE_KEY_ID}`, outcome: 'success' });
  });

  it('lists with keyset pagination, purges (dry run first) and reissues fresh URLs', async () => {
    const owner = uniqueUser('listed');
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await app.call('/v1/media', { method: 'POST', user: owner, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(await uniquePng()) } }) });
      ids.push((await res.json() as any).id);
    }
    const admin = { 'x-media-admin-key': ADMIN_KEY, 'content-type': 'application/json' };
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: { id: string; owner: string }[]; next_cursor: string | null } = await (
        await fetch(`${app.baseUrl}/v1/admin/media?owner=${owner}&limit=2${cursor ? `&cursor=${cursor}` : ''}`, { headers: admin })
      ).json() as any;
      expect(page.items.length).toBeLessThanOrEqual(2);
      for (const item of page.items) expect(item.owner).toBe(owner);
      seen.push(...page.items.map((i) => i.id));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toEqual([...ids].sort());

    const dry = await (await fetch(`${app.baseUrl}/v1/admin/media/purge`, { method: 'POST', headers: admin, body: JSON.stringify({ owner, dry_run: true }) })).json() as any;
    expect(dry).toEqual({ purged: [...ids].sort(), count: 5, dry_run: true, truncated: false, failed: [] });
    expect((await app.call(`/v1/media/${ids[0]}/metadata`, { user: owner })).status).toBe(200);

    const presigned = await (await app.call(`/v1/media/${ids[0]}/presign`, { user: owner })).json() as any;
    const reissued = await (await fetch(`${app.baseUrl}/v1/admin/media/${ids[0]}/reissue`, { method: 'POST', headers: admin, body: JSON.stringify({ ttl_seconds: 120 }) })).json() as any;
    expect(reissued).toMatchObject({ id: ids[0], url: expect.stringMatching(/^http:\/\//), expires_in: expect.any(Number) });
    expect(reissued.url).not.toBe(presigned.url);
    expect(reissued.expires_in).toBeLessThanOrEqual(120);
    expect((await fetch(reissued.url)).status).toBe(200);
    const tooLong = await fetch(`${app.baseUrl}/v1/admin/media/${ids[0]}/reissue`, { method: 'POST', headers: admin, body: JSON.stringify({ ttl_seconds: 10_000_000 }) });
    expect(tooLong.status).toBe(400);

    const empty = await fetch(`${app.baseUrl}/v1/admin/media/purge`, { method: 'POST', headers: admin, body: JSON.stringify({}) });
    expect((await empty.json() as any).code).toBe('invalid_request');

    const purge = await (
      await fetch(`${app.baseUrl}/v1/admin/media/purge`, { method: 'POST', headers: admin, body: JSON.stringify({ ids: ids.slice(0, 2), owner, dry_run: false }) })
    ).json() as any;
    expect(purge).toMatchObject({ purged: ids.slice(0, 2).sort(), count: 2, dry_run: false });
    expect((await app.call(`/v1/media/${ids[0]}/metadata`, { user: owner })).status).toBe(404);
    const usage = await (await fetch(`${app.baseUrl}/v1/admin/usage?owner=${owner}`, { headers: admin })).json() as any;
    expect(usage).toMatchObject({ owner, objects: 3, quota_objects: null, quota_bytes: null });

    const rows = await auditRows(app, 'media_id = ANY($1) AND action IN ($2, $3)', [ids, 'media.purge', 'media.reissue']);
    expect(rows.map((r) => [r.action, r.media_id, r.actor_kind, r.actor_id])).toEqual(
      expect.arrayContaining([
        ['media.reissue', ids[0], 'admin', keyId(ADMIN_KEY, 'admin-key')],
        ['media.purge', ids[0], 'admin', keyId(ADMIN_KEY, 'admin-key')],
        ['media.purge', ids[1], 'admin', keyId(ADMIN_KEY, 'admin-key')],
      ]),
    );
    expect(rows).toHaveLength(3);
    expect(JSON.stringify(rows)).not.toContain('http');
  });

  it('purge reports an object the storage cannot delete instead of failing with 500, and deletes the rest', async () => {
    const owner = uniqueUser('undeletable');
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await app.call('/v1/media', { method: 'POST', user: owner, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(await uniquePng()) } }) });
      ids.push((await res.json() as any).id);
    }
    const [stuck, other] = ids;
    // A non-empty directory where the object's file should be: rm answers ERR_FS_EISDIR.
    const file = join(app.dataDir, 'objects', 'images', `${stuck}.png`);
    await rm(file);
    await mkdir(file);
    await writeFile(join(file, 'inside'), 'x');
    const admin = { 'x-media-admin-key': ADMIN_KEY, 'content-type': 'application/json' };

    const res = await fetch(`${app.baseUrl}/v1/admin/media/purge`, { method: 'POST', headers: admin, body: JSON.stringify({ owner, dry_run: false }) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ purged: [other], count: 1, dry_run: false, truncated: false, failed: [{ id: stuck, code: 'storage_unavailable' }] });
    expect((await app.call(`/v1/media/${other}/metadata`, { user: owner })).status).toBe(404);
    // Claimed, so no longer served; the retention sweep retries it.
    expect((await app.call(`/v1/media/${stuck}`, { user: owner })).status).toBe(404);
    await rm(file, { recursive: true });
  });
});

describe('tokens and keys', () => {
  it('picks up a rotated signing key by kid, fetching the key set again', async () => {
    const before = issuer.fetches;
    await issuer.rotate('rsa-2');
    const res = await fetch(`${app.baseUrl}/v1/usage`, { headers: bearer(await issuer.mint({ sub: alice, kid: 'rsa-2' })) });
    expect(res.status).toBe(200);
    expect(issuer.fetches).toBeGreaterThan(before);
    // Known kids are served from the cache.
    const cached = issuer.fetches;
    for (let i = 0; i < 3; i++) await fetch(`${app.baseUrl}/v1/usage`, { headers: bearer(await issuer.mint({ sub: alice, kid: 'rsa-2' })) });
    expect(issuer.fetches).toBe(cached);
  });

  it('judges a bearer token before X-Jan-User-Id, which an end user may send in any form', async () => {
    const usage = async (headers: Record<string, string>) => {
      const res = await fetch(`${app.baseUrl}/v1/usage`, { headers });
      return { status: res.status, body: (await res.json()) as any };
    };
    // Ignored for end users, as for a gateway user key: a malformed value does not block the user.
    for (const value of ['', 'has space']) {
      expect(await usage({ ...bearer(await issuer.mint({ sub: alice })), 'x-jan-user-id': value })).toMatchObject({ status: 200, body: { owner: alice } });
      expect(await usage({ 'x-api-key': GATEWAY_USER_KEY, 'x-jan-user-id': value })).toMatchObject({ status: 200, body: { owner: alice } });
    }
    // A bad token is a 401 (sign in again), not a 400 about a header.
    expect(await usage({ ...bearer(await issuer.mint({ sub: alice, expiresIn: -600 })), 'x-jan-user-id': '' })).toMatchObject({ status: 401, body: { code: 'unauthorized' } });
    expect(await usage({ authorization: 'Bearer a.b.c', 'x-jan-user-id': 'has space' })).toMatchObject({ status: 401, body: { code: 'unauthorized' } });
    // An admin's token acts for the user it names, and a malformed name is still refused.
    const admin = bearer(await issuer.mint({ sub: operator, roles: [ADMIN_ROLE] }));
    expect(await usage({ ...admin, 'x-jan-user-id': bob })).toMatchObject({ status: 200, body: { owner: bob } });
    expect(await usage({ ...admin, 'x-jan-user-id': 'has space' })).toMatchObject({ status: 400, body: { code: 'invalid_request' } });
  });

  it("answers the caller's own usage", async () => {
    const res = await fetch(`${app.baseUrl}/v1/usage`, { headers: bearer(await issuer.mint({ sub: alice })) });
    const body = await res.json() as any;
    expect(body).toMatchObject({ owner: alice, objects: expect.any(Number), bytes: expect.any(Number), quota_objects: null, quota_bytes: null });
    expect(body.objects).toBeGreaterThan(0);
  });
});

describe('serving safely', () => {
  it('serves inline by default and as an attachment with ?download=1, with the protective headers', async () => {
    const id = await aliceObject();
    const token = bearer(await issuer.mint({ sub: alice }));
    const inline = await fetch(`${app.baseUrl}/v1/media/${id}`, { headers: token });
    expect(inline.headers.get('content-disposition')).toBe('inline');
    expect(inline.headers.get('content-type')).toBe('image/png');
    expect(inline.headers.get('x-content-type-options')).toBe('nosniff');
    expect(inline.headers.get('content-security-policy')).toBe("default-src 'none'");
    expect(inline.headers.get('cache-control')).toContain('private');
    const download = await fetch(`${app.baseUrl}/v1/media/${id}?download=1`, { headers: token });
    expect(download.headers.get('content-disposition')).toMatch(/^attachment; filename="jan_[0-9a-z]+\.png"/);
    const signed = await (await fetch(`${app.baseUrl}/v1/media/${id}/presign?download=1`, { headers: token })).json() as any;
    expect((await fetch(signed.url)).headers.get('content-disposition')).toMatch(/^attachment/);
  });

  it('refuses a repeated download flag with 400 invalid_request rather than serving inline, and a signed URL with a repeated parameter with 403', async () => {
    const id = await aliceObject();
    const token = bearer(await issuer.mint({ sub: alice }));
    for (const query of ['download=1&download=1', 'download=1&download=0', 'download=0&download=true']) {
      for (const path of [`/v1/media/${id}?${query}`, `/v1/media/${id}/presign?${query}`]) {
        const res = await fetch(`${app.baseUrl}${path}`, { headers: token });
        expect(res.status).toBe(400);
        expect(await res.json()).toMatchObject({ code: 'invalid_request', details: { parameter: 'download' } });
      }
    }
    // The signed file route takes no flag: the disposition is a signed parameter, and any signed
    // parameter given twice no longer matches the signature.
    const signed = await (await fetch(`${app.baseUrl}/v1/media/${id}/presign?download=1`, { headers: token })).json() as any;
    const url = new URL(signed.url);
    for (const name of ['cd', 'expires', 'sig']) {
      const twice = new URL(url);
      twice.searchParams.append(name, url.searchParams.get(name)!);
      const res = await fetch(twice);
      expect(res.status).toBe(403);
      expect(((await res.json()) as any).code).toBe('invalid_signature');
    }
    expect((await fetch(url)).headers.get('content-disposition')).toMatch(/^attachment/);
  });

  it('answers CORS only for the configured origins', async () => {
    const token = bearer(await issuer.mint({ sub: alice }));
    const allowed = await fetch(`${app.baseUrl}/v1/usage`, { headers: { ...token, origin: ORIGIN } });
    expect(allowed.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(allowed.headers.get('vary')).toContain('Origin');
    const foreign = await fetch(`${app.baseUrl}/v1/usage`, { headers: { ...token, origin: 'https://evil.example' } });
    expect(foreign.status).toBe(200);
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();

    const preflight = await fetch(`${app.baseUrl}/v1/media`, {
      method: 'OPTIONS',
      headers: { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(ORIGIN);
    expect(preflight.headers.get('access-control-allow-headers')).toContain('Authorization');
    expect(preflight.headers.get('access-control-allow-headers')).not.toContain('X-Media-Service-Key');
    const refused = await fetch(`${app.baseUrl}/v1/media`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
  });
});
