import { JwtIssuer, jwtAuthEnv } from '../support/jwt-issuer';
import { freePort, startTestApp, type TestApp } from '../support/test-app';

/** When the issuer's key set cannot be fetched, a token is not judged: 503, not 401. */
describe('JWKS outage', () => {
  let issuer: JwtIssuer;
  let app: TestApp;

  beforeAll(async () => {
    issuer = await JwtIssuer.start();
    const closedPort = await freePort();
    app = await startTestApp({
      env: jwtAuthEnv(`http://127.0.0.1:${closedPort}/certs`),
    });
  });
  afterAll(async () => {
    await app?.close();
    await issuer?.close();
  });

  it('answers 503 auth_unavailable for a well-formed token, and still 401 for garbage', async () => {
    const token = await issuer.mint({ sub: 'alice' });
    const res = await app.call('/v1/usage', { key: null, headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('2');
    expect(((await res.json()) as any).code).toBe('auth_unavailable');

    const garbage = await app.call('/v1/usage', { key: null, headers: { authorization: 'Bearer not.a.jwt' } });
    expect(garbage.status).toBe(401);
  });
});
