import { createHmac } from 'node:crypto';
import { DomainError } from '@jan/domain';
import { SignJWT, createLocalJWKSet, exportJWK, exportSPKI, generateKeyPair, type CryptoKey, type JSONWebKeySet, type JWK, type JWTVerifyGetKey } from 'jose';
import { JwtVerifier, rolesOf, withFailureCooldown, type RemoteKeySet } from './jwt-verifier';
import { KeyRing, keyId } from './key-ring';

/** The documented formula (docs/migration.md), computed with node:crypto by hand: ids must not drift between releases. */
const KNOWN_FIRST_KEY_ID = 'service-key-0821a98830e9';
import { PrincipalResolver, type Headers } from './principal-resolver';

const ISSUER = 'https://id.example.test/realms/jan';
const SERVICE_KEY = 'service-key-0123456789abcdef';
const ADMIN_KEY = 'admin-key-0123456789abcdef';

let rsa: { privateKey: CryptoKey; jwk: JWK; pem: string };
let ec: { privateKey: CryptoKey; jwk: JWK };
let stranger: { privateKey: CryptoKey };

beforeAll(async () => {
  const r = await generateKeyPair('RS256', { extractable: true });
  rsa = { privateKey: r.privateKey, jwk: { ...(await exportJWK(r.publicKey)), kid: 'rsa-1', alg: 'RS256' }, pem: await exportSPKI(r.publicKey) };
  const e = await generateKeyPair('ES256', { extractable: true });
  ec = { privateKey: e.privateKey, jwk: { ...(await exportJWK(e.publicKey)), kid: 'ec-1', alg: 'ES256' } };
  stranger = { privateKey: (await generateKeyPair('RS256')).privateKey };
});

function verifier() {
  return new JwtVerifier(
    { issuer: ISSUER, jwksUrl: 'http://127.0.0.1:1/unused', audience: 'account', adminRole: 'media-admin', clockSkewSeconds: 30 },
    createLocalJWKSet({ keys: [rsa.jwk, ec.jwk] }),
  );
}

function resolver(options: { jwt?: boolean } = {}) {
  return PrincipalResolver.fromConfig({
    serviceKeys: [SERVICE_KEY, 'service-key-rotated-0123456789'],
    adminKeys: [ADMIN_KEY],
    apiKeys: [
      { key: 'gateway-service-0123456789', kind: 'service', name: 'kong-llm-api' },
      { key: 'gateway-admin-0123456789ab', kind: 'admin', name: 'ops-console' },
      { key: 'gateway-user-0123456789abc', kind: 'user', name: 'alice' },
    ],
    jwt: options.jwt === false ? null : verifier(),
  });
}

async function token(
  claims: Record<string, unknown> = {},
  options: { sub?: string; iss?: string; aud?: string; exp?: number; nbf?: number; key?: 'rsa' | 'ec' | 'stranger'; kid?: string } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const key = options.key ?? 'rsa';
  const alg = key === 'ec' ? 'ES256' : 'RS256';
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg, kid: options.kid ?? (key === 'ec' ? 'ec-1' : key === 'rsa' ? 'rsa-1' : 'other') })
    .setIssuer(options.iss ?? ISSUER)
    .setAudience(options.aud ?? 'account')
    .setSubject(options.sub ?? 'alice')
    .setExpirationTime(now + (options.exp ?? 300));
  if (options.nbf !== undefined) jwt.setNotBefore(now + options.nbf);
  return jwt.sign(key === 'ec' ? ec.privateKey : key === 'rsa' ? rsa.privateKey : stranger.privateKey);
}

const bearer = (value: string, extra: Headers = {}): Headers => ({ authorization: `Bearer ${value}`, ...extra });

async function failure(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof DomainError) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error('expected a rejection');
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('PrincipalResolver', () => {
  it('accepts every configured service key, acting for X-Jan-User-Id', async () => {
    const r = resolver();
    expect(await r.resolve({ 'x-media-service-key': SERVICE_KEY })).toEqual({ kind: 'service', serviceId: keyId(SERVICE_KEY, 'service-key'), actingFor: null });
    expect(await r.resolve({ 'x-media-service-key': 'service-key-rotated-0123456789', 'x-jan-user-id': ' bob ' })).toEqual({
      kind: 'service',
      serviceId: keyId('service-key-rotated-0123456789', 'service-key'),
      actingFor: 'bob',
    });
    expect((await failure(r.resolve({ 'x-media-service-key': 'nope' }))).code).toBe('unauthorized');
    expect((await failure(r.resolve({ 'x-media-service-key': SERVICE_KEY, 'x-jan-user-id': 'has space' }))).code).toBe('invalid_request');
  });

  it('never lets a named user or a token subject be the owner of a service\'s or admin\'s own uploads', async () => {
    const r = resolver();
    const serviceOwner = `service:${keyId(SERVICE_KEY, 'service-key')}`;
    for (const named of [serviceOwner, 'service:service-key-1', 'admin:admin-key-1', 'service:kong-llm-api']) {
      const refused = await failure(r.resolve({ 'x-media-service-key': SERVICE_KEY, 'x-jan-user-id': named }));
      expect(refused).toEqual({ code: 'invalid_request', message: expect.stringContaining('reserved') });
      expect((await failure(r.resolve({ 'x-media-admin-key': ADMIN_KEY, 'x-jan-user-id': named }))).code).toBe('invalid_request');
      expect(await failure(r.resolve(bearer(await token({}, { sub: named }))))).toEqual({ code: 'unauthorized', message: expect.stringContaining('reserved') });
      expect((await failure(r.resolve(bearer(await token({ roles: ['media-admin'] }, { sub: named }))))).code).toBe('unauthorized');
    }
    // Only the exact prefixes are reserved.
    expect(await r.resolve({ 'x-media-service-key': SERVICE_KEY, 'x-jan-user-id': 'servicex:1' })).toMatchObject({ actingFor: 'servicex:1' });
    expect(await r.resolve(bearer(await token({}, { sub: 'user:service:1' })))).toEqual({ kind: 'user', subject: 'user:service:1' });
  });

  it('makes admins of the admin key and of tokens with the admin role, in either claim', async () => {
    const r = resolver();
    expect(await r.resolve({ 'x-media-admin-key': ADMIN_KEY, 'x-jan-user-id': 'carol' })).toEqual({ kind: 'admin', adminId: keyId(ADMIN_KEY, 'admin-key'), actingFor: 'carol' });
    expect(await r.resolve(bearer(await token({ realm_access: { roles: ['offline_access', 'media-admin'] } }, { sub: 'op-1' })))).toEqual({
      kind: 'admin',
      adminId: 'op-1',
      actingFor: null,
    });
    expect((await r.resolve(bearer(await token({ roles: ['media-admin'] }, { sub: 'op-2' })))).kind).toBe('admin');
    expect((await r.resolve(bearer(await token({ roles: ['media-viewer'] })))).kind).toBe('user');
    // A wrong admin key is refused even when a valid service key comes along.
    expect((await failure(r.resolve({ 'x-media-admin-key': 'guess-0123456789abcdef', 'x-media-service-key': SERVICE_KEY }))).code).toBe('unauthorized');
  });

  it('refuses the admin key header when no admin key is configured', async () => {
    const r = PrincipalResolver.fromConfig({ serviceKeys: [SERVICE_KEY], adminKeys: [], apiKeys: [], jwt: null });
    expect((await failure(r.resolve({ 'x-media-admin-key': '' }))).code).toBe('unauthorized');
  });

  it('judges the token before X-Jan-User-Id, which only an admin token uses', async () => {
    const r = resolver();
    expect(await r.resolve(bearer(await token({}, { sub: 'alice' }), { 'x-jan-user-id': '' }))).toEqual({ kind: 'user', subject: 'alice' });
    expect((await failure(r.resolve(bearer(await token({}, { exp: -120 }), { 'x-jan-user-id': '' })))).code).toBe('unauthorized');
    expect((await failure(r.resolve(bearer(await token({ roles: ['media-admin'] }), { 'x-jan-user-id': 'has space' })))).code).toBe('invalid_request');
  });

  it("takes a user's identity from the token subject only", async () => {
    const r = resolver();
    expect(await r.resolve(bearer(await token({}, { sub: 'alice' }), { 'x-jan-user-id': 'bob' }))).toEqual({ kind: 'user', subject: 'alice' });
    expect(await r.resolve(bearer(await token({}, { key: 'ec', sub: 'ec-user' })))).toEqual({ kind: 'user', subject: 'ec-user' });
  });

  it.each([
    ['expired', () => token({}, { exp: -120 }), 'token has expired'],
    ['wrong audience', () => token({}, { aud: 'another-client' }), 'token claims are not valid here'],
    ['wrong issuer', () => token({}, { iss: 'https://evil.example.test/realms/jan' }), 'token claims are not valid here'],
    ['not yet valid', () => token({}, { nbf: 600 }), 'token claims are not valid here'],
    ['unknown kid', () => token({}, { key: 'stranger', kid: 'rotated-away' }), 'token is signed by an unknown key'],
    ['signed by a stranger under a known kid', () => token({}, { key: 'stranger', kid: 'rsa-1' }), 'token signature is invalid'],
    [
      'alg none',
      async () => `${b64({ alg: 'none' })}.${b64({ iss: ISSUER, aud: 'account', sub: 'alice', exp: Math.floor(Date.now() / 1000) + 60 })}.`,
      'token algorithm is not allowed',
    ],
    [
      'HS256 keyed with the public key',
      async () => {
        const input = `${b64({ alg: 'HS256', kid: 'rsa-1' })}.${b64({ iss: ISSUER, aud: 'account', sub: 'alice', exp: Math.floor(Date.now() / 1000) + 60 })}`;
        return `${input}.${createHmac('sha256', rsa.pem).update(input).digest('base64url')}`;
      },
      'token algorithm is not allowed',
    ],
    [
      'tampered payload',
      async () => {
        const [h, , s] = (await token({}, { sub: 'bob' })).split('.');
        return `${h}.${b64({ iss: ISSUER, aud: 'account', sub: 'alice', exp: Math.floor(Date.now() / 1000) + 60 })}.${s}`;
      },
      'token signature is invalid',
    ],
    ['garbage', async () => 'not.a.jwt', 'token is malformed'],
  ])('refuses a token that is %s with 401', async (_name, make, message) => {
    const result = await failure(resolver().resolve(bearer(await make())));
    expect(result).toEqual({ code: 'unauthorized', message });
  });

  it('tolerates a small clock skew', async () => {
    expect((await resolver().resolve(bearer(await token({}, { exp: -10 })))).kind).toBe('user');
  });

  it('requires a subject', async () => {
    const now = Math.floor(Date.now() / 1000);
    const noSub = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'rsa-1' }).setIssuer(ISSUER).setAudience('account').setExpirationTime(now + 60).sign(rsa.privateKey);
    expect((await failure(resolver().resolve(bearer(noSub)))).code).toBe('unauthorized');
  });

  it('maps gateway keys (X-API-Key) to the principal configured for them', async () => {
    const r = resolver();
    expect(await r.resolve({ 'x-api-key': 'gateway-service-0123456789', 'x-jan-user-id': 'alice' })).toEqual({
      kind: 'service',
      serviceId: 'kong-llm-api',
      actingFor: 'alice',
    });
    expect(await r.resolve({ 'x-api-key': 'gateway-admin-0123456789ab' })).toEqual({ kind: 'admin', adminId: 'ops-console', actingFor: null });
    expect(await r.resolve({ 'x-api-key': 'gateway-user-0123456789abc', 'x-jan-user-id': 'bob' })).toEqual({ kind: 'user', subject: 'alice' });
    expect((await failure(r.resolve({ 'x-api-key': 'gateway-unknown-0123456789' }))).code).toBe('unauthorized');
  });

  it('checks credentials in a fixed order, the first one present deciding', async () => {
    const r = resolver();
    const userToken = await token({}, { sub: 'alice' });
    expect((await r.resolve({ 'x-media-service-key': SERVICE_KEY, authorization: `Bearer ${userToken}` })).kind).toBe('service');
    expect((await r.resolve({ authorization: `Bearer ${userToken}`, 'x-api-key': 'gateway-admin-0123456789ab' })).kind).toBe('user');
    expect((await failure(r.resolve({ authorization: 'Basic YWxpY2U6cHc=' }))).code).toBe('unauthorized');
  });

  it('ignores bearer tokens when AUTH_ENABLED is off, and asks for credentials when nothing else is sent', async () => {
    const r = resolver({ jwt: false });
    const userToken = await token();
    expect(await failure(r.resolve(bearer(userToken)))).toEqual({ code: 'unauthorized', message: 'missing credentials: send X-Media-Service-Key or X-API-Key' });
    expect((await r.resolve(bearer(userToken, { 'x-api-key': 'gateway-user-0123456789abc' }))).kind).toBe('user');
    expect((await failure(resolver().resolve({}))).code).toBe('unauthorized');
  });
});

describe('KeyRing and roles', () => {
  it('matches any of several keys, never a prefix or a longer key', () => {
    const ring = KeyRing.fingerprinted(['first-key-0123456789', 'second-key-0123456789'], 'k');
    expect(ring.match('second-key-0123456789')).toBe(keyId('second-key-0123456789', 'k'));
    expect(ring.match('second-key-012345678')).toBeNull();
    expect(ring.match('second-key-01234567890')).toBeNull();
    expect(ring.match('')).toBeNull();
  });

  it('names each key by the key alone: reordering or removing others never renames it, and the id shows nothing of the key', () => {
    const [a, b, c] = ['first-key-0123456789', 'second-key-0123456789', 'third-key-0123456789'];
    const before = KeyRing.fingerprinted([a, b, c], 'service-key');
    const reordered = KeyRing.fingerprinted([c, a], 'service-key');
    expect(reordered.match(a)).toBe(before.match(a));
    expect(reordered.match(c)).toBe(before.match(c));
    expect(reordered.match(b)).toBeNull();
    expect(before.values).toEqual([a, b, c].map((key) => keyId(key, 'service-key')));
    for (const id of before.values) {
      expect(id).toMatch(/^service-key-[0-9a-f]{12}$/);
      // Not positional, and no piece of any key.
      expect(id).not.toMatch(/^service-key-\d{1,2}$/);
      for (const key of [a, b, c]) for (let i = 0; i + 4 <= key.length; i++) expect(id.slice('service-key-'.length)).not.toContain(key.slice(i, i + 4));
    }
    expect(new Set(before.values).size).toBe(3);
    // Fixed across releases: an owner `service:<id>` must survive an upgrade.
    expect(keyId('first-key-0123456789', 'service-key')).toBe(KNOWN_FIRST_KEY_ID);
  });

  it('reads roles from realm_access and the top level, ignoring junk', () => {
    expect(rolesOf({ realm_access: { roles: ['a', 1, 'b'] }, roles: ['c'] } as never)).toEqual(['a', 'b', 'c']);
    expect(rolesOf({ roles: 'admin' } as never)).toEqual([]);
  });
});

describe('JWKS fetch failures', () => {
  /** A remote key set that fetches on every call, answering the RSA key while `up`, timing out otherwise. */
  function issuer() {
    const state = { up: true, fetches: 0, fetched: undefined as JSONWebKeySet | undefined };
    const remote: RemoteKeySet = Object.assign(
      async (...args: Parameters<JWTVerifyGetKey>) => {
        state.fetches++;
        if (!state.up) throw Object.assign(new Error('request timed out'), { code: 'ERR_JWKS_TIMEOUT' });
        state.fetched = { keys: [rsa.jwk] };
        return createLocalJWKSet(state.fetched)(...args);
      },
      { jwks: () => state.fetched },
    );
    return { remote, state };
  }
  const settings = { issuer: ISSUER, jwksUrl: 'http://127.0.0.1:1/unused', audience: 'account', adminRole: 'media-admin', clockSkewSeconds: 30 };

  it('fetches nothing for a cooldown after a failed fetch: known keys still verify, unknown ones are the outage', async () => {
    let now = 0;
    const { remote, state } = issuer();
    const verifier = new JwtVerifier(settings, withFailureCooldown(remote, 5_000, () => now));
    expect((await verifier.verify(await token())).kind).toBe('user');
    state.up = false;
    // The failed fetch falls back to the keys fetched before.
    expect((await verifier.verify(await token())).kind).toBe('user');
    expect(state.fetches).toBe(2);
    // Made-up key ids do not reach the issuer again within the cooldown.
    for (let i = 0; i < 5; i++) {
      expect(await failure(verifier.verify(await token({}, { key: 'stranger', kid: `made-up-${i}` })))).toMatchObject({ code: 'auth_unavailable' });
    }
    expect((await verifier.verify(await token())).kind).toBe('user');
    expect(state.fetches).toBe(2);
    // After it, one fetch again; the issuer back, unknown keys are the token's fault.
    now = 5_000;
    state.up = true;
    expect(await failure(verifier.verify(await token({}, { key: 'stranger', kid: 'made-up' })))).toMatchObject({ code: 'unauthorized' });
    expect(state.fetches).toBe(3);
  });

  it('with nothing fetched yet, answers the outage without fetching again within the cooldown', async () => {
    let now = 0;
    const { remote, state } = issuer();
    state.up = false;
    const verifier = new JwtVerifier(settings, withFailureCooldown(remote, 5_000, () => now));
    for (let i = 0; i < 3; i++) expect(await failure(verifier.verify(await token()))).toMatchObject({ code: 'auth_unavailable' });
    expect(state.fetches).toBe(1);
    now = 5_001;
    state.up = true;
    expect((await verifier.verify(await token())).kind).toBe('user');
    expect(state.fetches).toBe(2);
  });
});
