import { SignJWT } from 'jose';
import type { TestApp } from '../support/test-app';
import { dataUrl, jpegImage, uniqueUser } from '../support/images';
import { uniquePng } from '../support/unique-image';
import { AUDIENCE, ISSUER, JwtIssuer, startJwtTestApp } from '../support/jwt-issuer';

jest.setTimeout(120_000);

const ADMIN_KEY = 'e2e-admin-key-0123456789abcdef';
const alice = uniqueUser('alice');
const bob = uniqueUser('bob');

let issuer: JwtIssuer;
let app: TestApp;
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

let close: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ issuer, app, close } = await startJwtTestApp({ MEDIA_ADMIN_KEY: ADMIN_KEY, MEDIA_RATE_LIMIT: '0' }));
});

afterAll(async () => {
  await close?.();
});

async function usage(headers: Record<string, string>) {
  const res = await fetch(`${app.baseUrl}/v1/usage`, { headers });
  return { status: res.status, body: (await res.json()) as any };
}

async function aliceObject(): Promise<string> {
  const res = await app.call('/v1/media', { method: 'POST', user: alice, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(await uniquePng()) } }) });
  expect(res.status).toBe(200);
  return ((await res.json()) as any).id;
}

describe('JWT probes', () => {
  it('refuses subjects with control characters, and no exp', async () => {
    for (const sub of ['alice\u0000', 'ali\nce', '\u007f', ' ', 'a'.repeat(201)]) {
      expect(await usage(bearer(await issuer.mint({ sub })))).toMatchObject({ status: 401, body: { code: 'unauthorized' } });
    }
    const key = issuer.keys[0];
    const noExp = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: key.kid }).setIssuer(ISSUER).setAudience(AUDIENCE).setSubject(alice).sign(key.privateKey);
    expect(await usage(bearer(noExp))).toMatchObject({ status: 401 });
  });

  it('refuses not-yet-valid tokens beyond the skew, accepts within', async () => {
    expect((await usage(bearer(await issuer.mint({ sub: alice, notBefore: 600 })))).status).toBe(401);
    expect((await usage(bearer(await issuer.mint({ sub: alice, notBefore: 10 })))).status).toBe(200);
  });

  it('refuses a token whose header alg differs from the key (RS256 header on the EC kid)', async () => {
    const ec = issuer.keys.find((k) => k.alg === 'ES256')!;
    const rsa = issuer.keys.find((k) => k.alg === 'RS256')!;
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: ec.kid }).setIssuer(ISSUER).setAudience(AUDIENCE).setSubject(alice).setExpirationTime(now + 60).sign(rsa.privateKey);
    const r = await usage(bearer(token));
    expect(r.status).toBe(401);
  });

  it('answers huge tokens without a 500', async () => {
    const big = 'a'.repeat(10_000) + '.' + 'b'.repeat(10_000) + '.c';
    const res = await fetch(`${app.baseUrl}/v1/usage`, { headers: bearer(big) }).catch((e) => e);
    if (res instanceof Response) expect([401, 431]).toContain(res.status);
    const mid = 'a'.repeat(2000) + '.' + 'b'.repeat(8000) + '.c';
    expect((await usage(bearer(mid))).status).toBe(401);
    // garbage that is base64url but not JSON
    expect((await usage(bearer('eyJ.eyJ.x'))).status).toBe(401);
    const weird = Buffer.from('{"alg":"RS256","kid":{"x":1}}').toString('base64url') + '.' + Buffer.from('{}').toString('base64url') + '.sig';
    expect((await usage(bearer(weird))).status).toBe(401);
    const crit = Buffer.from('{"alg":"RS256","kid":"rsa-1","crit":["zip"],"zip":1}').toString('base64url') + '.' + Buffer.from('{}').toString('base64url') + '.sig';
    expect((await usage(bearer(crit))).status).toBe(401);
  });

  it('does not echo the token in the error body', async () => {
    const token = await issuer.mint({ sub: alice, expiresIn: -600 });
    const res = await fetch(`${app.baseUrl}/v1/usage`, { headers: bearer(token) });
    const text = await res.text();
    expect(text).not.toContain(token.split('.')[1]);
  });

  it('ignores X-Jan-User-Id and user_id from an end user on ingest', async () => {
    const token = bearer(await issuer.mint({ sub: bob }));
    const res = await fetch(`${app.baseUrl}/v1/media`, {
      method: 'POST',
      headers: { ...token, 'x-jan-user-id': alice, 'content-type': 'application/json' },
      body: JSON.stringify({ user_id: alice, source: { type: 'data_url', data_url: dataUrl(await uniquePng()) } }),
    });
    expect(res.status).toBe(200);
    const id = ((await res.json()) as any).id;
    expect((await app.call(`/v1/media/${id}/metadata`, { user: alice })).status).toBe(404);
    expect((await app.call(`/v1/media/${id}/metadata`, { user: bob })).status).toBe(200);
  });
});

describe('other users and retired keys', () => {
  it("hides another user's object behind ?download=1 as on every read", async () => {
    const id = await aliceObject();
    const missing = async (path: string) => {
      const res = await fetch(`${app.baseUrl}${path}`, { headers: bearer(await issuer.mint({ sub: bob })) });
      return { status: res.status, body: { ...((await res.json()) as any), request_id: undefined } };
    };
    const unknown = await missing('/v1/media/jan_01hqr8v9k2x3f4g5h6j7k8m9n0?download=1');
    expect(unknown.status).toBe(404);
    expect(await missing(`/v1/media/${id}?download=1`)).toEqual(unknown);
    expect(await missing(`/v1/media/${id}/presign?download=1`)).toEqual(await missing('/v1/media/jan_01hqr8v9k2x3f4g5h6j7k8m9n0/presign?download=1'));
  });

  it('refuses a token of a key the issuer has retired, once the key set was fetched again', async () => {
    await issuer.rotate('rsa-new');
    const retired = issuer.keys.findIndex((k) => k.kid === 'rsa-1');
    const old = await issuer.mint({ sub: alice, kid: 'rsa-1' });
    issuer.keys.splice(retired, 1);
    // A token under the new kid makes the verifier fetch the set, which no longer has rsa-1.
    expect((await usage(bearer(await issuer.mint({ sub: alice, kid: 'rsa-new' })))).status).toBe(200);
    expect(await usage(bearer(old))).toMatchObject({ status: 401, body: { code: 'unauthorized' } });
  });
});

describe('local signed URLs', () => {
  async function signed(id: string, query = '') {
    return ((await (await app.call(`/v1/media/${id}/presign${query}`, { user: alice })).json()) as any).url as string;
  }

  it('refuses each tampered parameter with 403', async () => {
    const id = await aliceObject();
    const url = new URL(await signed(id));
    expect((await fetch(url)).status).toBe(200);
    const variants: Array<[string, (u: URL) => void]> = [
      ['expires +1', (u) => u.searchParams.set('expires', String(Number(u.searchParams.get('expires')) + 1))],
      ['expires 1e12', (u) => u.searchParams.set('expires', '1e12')],
      ['ct text/html', (u) => u.searchParams.set('ct', 'text/html')],
      ['ct dropped', (u) => u.searchParams.delete('ct')],
      ['cd attachment', (u) => u.searchParams.set('cd', 'attachment')],
      ['cd added twice', (u) => u.searchParams.append('cd', 'inline')],
      ['ct twice', (u) => u.searchParams.append('ct', 'image/png')],
      ['sig twice', (u) => u.searchParams.append('sig', u.searchParams.get('sig')!)],
      ['kid other', (u) => u.searchParams.set('kid', 'other')],
      ['kid dropped', (u) => u.searchParams.delete('kid')],
      ['sig dropped', (u) => u.searchParams.delete('sig')],
      ['sig flipped', (u) => u.searchParams.set('sig', u.searchParams.get('sig')!.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')))],
      ['sig empty', (u) => u.searchParams.set('sig', '')],
      ['other key', (u) => (u.pathname = u.pathname.replace(id, 'jan_01hqr8v9k2x3f4g5h6j7k8m9n0'))],
      ['other ext', (u) => (u.pathname = u.pathname.replace('.png', '.jpg'))],
      ['uppercase', (u) => (u.pathname = u.pathname.replace(id, id.toUpperCase()))],
    ];
    for (const [name, change] of variants) {
      const u = new URL(url);
      change(u);
      const res = await fetch(u);
      const body = await res.text();
      expect([name, res.status]).toEqual([name, 403]);
      expect(body).not.toContain('images/');
    }
  });

  it('answers traversal and encoded slashes without serving or a 500', async () => {
    const id = await aliceObject();
    const url = new URL(await signed(id));
    for (const path of [
      `/v1/files/images/..%2F..%2F..%2Fetc%2Fpasswd`,
      `/v1/files/images/%2e%2e%2f${id}.png`,
      `/v1/files/images/..%2Fuploads%2F${id}.png`,
      `/v1/files/images%2F${id}.png`,
      `/v1/files/images/${id}.png%00`,
      `/v1/files/images/${id}.png%2F`,
      `/v1/files/uploads/${id}.png`,
    ]) {
      const res = await fetch(`${app.baseUrl}${path}${url.search}`);
      expect([path, res.status < 500 && res.status !== 200]).toEqual([path, true]);
    }
  });

  it('a signed URL for a deleted object is 404, an expired one 403 url_expired', async () => {
    const id = await aliceObject();
    const url = await signed(id);
    expect((await app.call(`/v1/media/${id}`, { method: 'DELETE', user: alice })).status).toBe(204);
    const gone = await fetch(url);
    expect(gone.status).toBe(404);
    const id2 = await aliceObject();
    const reissued = (await (await fetch(`${app.baseUrl}/v1/admin/media/${id2}/reissue`, { method: 'POST', headers: { 'x-media-admin-key': ADMIN_KEY, 'content-type': 'application/json' }, body: JSON.stringify({ ttl_seconds: 1 }) })).json()) as any;
    await new Promise((r) => setTimeout(r, 2200));
    const expired = await fetch(reissued.url);
    expect(expired.status).toBe(403);
    expect(await expired.json()).toMatchObject({ code: 'url_expired' });
  });

  it('an upload URL works only for its own key, method and route', async () => {
    const prep = async () => (await (await app.call('/v1/media/prepare-upload', { method: 'POST', user: alice, body: JSON.stringify({ mime_type: 'image/png' }) })).json()) as any;
    const a = await prep();
    const b = await prep();
    const png = await uniquePng();
    const onB = new URL(a.upload_url);
    onB.pathname = onB.pathname.replace(a.id, b.id);
    expect((await fetch(onB, { method: 'PUT', headers: { 'content-type': 'image/png' }, body: png })).status).toBe(403);
    // as a read URL
    const asRead = new URL(a.upload_url);
    asRead.pathname = asRead.pathname.replace('/v1/uploads/uploads/', '/v1/files/images/');
    expect((await fetch(asRead)).status).toBeGreaterThanOrEqual(400);
    // legacy images route with the uploads signature
    const legacy = new URL(a.upload_url);
    legacy.pathname = legacy.pathname.replace('/v1/uploads/uploads/', '/v1/uploads/images/');
    expect((await fetch(legacy, { method: 'PUT', headers: { 'content-type': 'image/png' }, body: png })).status).toBe(403);
    // content type other than signed
    expect((await fetch(a.upload_url, { method: 'PUT', headers: { 'content-type': 'image/jpeg' }, body: png })).status).toBe(403);
    // a read URL of a ready object cannot overwrite it
    const id = await aliceObject();
    const read = new URL(await signed(id));
    read.pathname = read.pathname.replace('/v1/files/', '/v1/uploads/');
    expect((await fetch(read, { method: 'PUT', headers: { 'content-type': 'image/png' }, body: png })).status).toBe(403);
    expect((await fetch(a.upload_url, { method: 'PUT', headers: { 'content-type': 'image/png' }, body: png })).status).toBe(200);
    expect((await fetch(a.upload_url, { method: 'PUT', headers: { 'content-type': 'image/png' }, body: png })).status).toBe(403);
  });
});

describe('no storage detail in non-admin answers', () => {
  it('metadata, ingest, presign and errors do not name storage keys or the data dir', async () => {
    const id = await aliceObject();
    for (const path of [`/v1/media/${id}/metadata`, `/v1/media/${id}/presign`, `/v1/usage`, `/v1/media/jan_01hqr8v9k2x3f4g5h6j7k8m9n0`]) {
      const text = await (await app.call(path, { user: alice })).text();
      expect(text).not.toContain(app.dataDir);
      if (!path.endsWith('presign')) expect(text).not.toMatch(/images\/jan_/);
    }
  });
});

describe('remote_url to this machine, however it is spelled', () => {
  it.each(['http://2130706433/x.png', 'http://0x7f.1/x.png', 'http://0177.0.0.1/x.png', 'http://127.1/x.png', 'http://[::ffff:7f00:1]/x.png', 'http://localhost./x.png', 'http://api.localhost/x.png', 'http://[::]/x.png', 'http://0/x.png'])(
    '%s is remote_fetch_blocked',
    async (url) => {
      const res = await fetch(`${app.baseUrl}/v1/media`, {
        method: 'POST',
        headers: { ...bearer(await issuer.mint({ sub: alice })), 'content-type': 'application/json' },
        body: JSON.stringify({ source: { type: 'remote_url', url } }),
      });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ code: 'remote_fetch_blocked' });
    },
  );
});

describe('download names', () => {
  it("a download is named with the served type's extension, whatever the uploader called it", async () => {
    const upload = async (filename: string, bytes: Buffer, mime: string) => {
      const res = await app.call('/v1/media', { method: 'POST', user: alice, body: JSON.stringify({ filename, source: { type: 'data_url', data_url: dataUrl(bytes, mime) } }) });
      expect(res.status).toBe(200);
      return ((await res.json()) as any).id as string;
    };
    const disposition = async (id: string) => {
      const direct = (await app.call(`/v1/media/${id}?download=1`, { user: alice })).headers.get('content-disposition');
      const signed = ((await (await app.call(`/v1/media/${id}/presign?download=1`, { user: alice })).json()) as any).url;
      expect((await fetch(signed)).headers.get('content-disposition')).toBe(direct);
      return direct;
    };
    // A PNG called invoice.html must not land on a victim's disk as an HTML file from this host.
    expect(await disposition(await upload('invoice.html', await uniquePng(), 'image/png'))).toBe(
      `attachment; filename="invoice.html.png"; filename*=UTF-8''invoice.html.png`,
    );
    expect(await disposition(await upload('setup.exe ', await uniquePng(), 'image/png'))).toMatch(/filename="setup\.exe\.png"/);
    // A name that already fits (any case, either spelling of JPEG) is kept.
    expect(await disposition(await upload('Cat.PNG', await uniquePng(), 'image/png'))).toMatch(/filename="Cat\.PNG"/);
    expect(await disposition(await upload('photo.jpeg', await jpegImage(Date.now() % 100_000), 'image/jpeg'))).toMatch(/filename="photo\.jpeg"/);
  });
});
