import { RemoteFetcher } from '@jan/domain';
import { Client } from 'pg';
import { freePort, postgresDsn, startTestApp, type TestApp } from '../support/test-app';
import { dataUrl, uniqueUser } from '../support/images';
import { uniquePng } from '../support/unique-image';

/** Error answers over real HTTP: codes per source type, SSRF refusals that leak nothing, 503s with Retry-After. */
describe('error responses', () => {
  describe('POST /v1/media source validation and SSRF refusals', () => {
    let app: TestApp;
    let db: Client;
    beforeAll(async () => {
      app = await startTestApp({ env: { MEDIA_RATE_LIMIT: '0' } });
      // An injected resolver: no lookup leaves the machine, and no name resolves to anything we connect to.
      const answers: Record<string, string> = { 'metadata.corp.test': '169.254.169.254', 'db.corp.test': '10.1.2.3' };
      Object.assign(app.running.app.get(RemoteFetcher), {
        resolver: async (host: string) => {
          if (answers[host]) return [{ address: answers[host], family: 4 }];
          throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
        },
      });
      db = new Client({ connectionString: postgresDsn() });
      await db.connect();
    });
    afterAll(async () => {
      await db?.end();
      await app?.close();
    });

    const post = (user: string, source: Record<string, unknown>) => app.call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source }) });
    const answer = async (res: Response) => {
      const body = (await res.json()) as { error: string; code: string; details?: unknown };
      return { status: res.status, code: body.code, error: body.error, details: body.details };
    };

    it.each([
      ['remote_url without url', { type: 'remote_url' }, 'invalid_remote_url'],
      ['remote_url with an empty url', { type: 'remote_url', url: '' }, 'invalid_remote_url'],
      ['remote_url with a url that does not parse', { type: 'remote_url', url: 'not a url' }, 'invalid_remote_url'],
      ['data_url without data_url', { type: 'data_url' }, 'invalid_data_url'],
    ])('refuses %s with 400 %s and stores nothing', async (_name, source, code) => {
      const user = uniqueUser('errors');
      const res = await post(user, source);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { code: string }).code).toBe(code);
      expect((await db.query('SELECT id FROM media_api.media_objects WHERE created_by = $1', [user])).rows).toEqual([]);
    });

    it('answers a name that does not resolve exactly as one that resolves to a blocked range', async () => {
      const user = uniqueUser('errors');
      // The same host name in each case, so that only the resolver's answer differs.
      const resolveAs = (host: string) => post(user, { type: 'remote_url', url: `http://${host}/a.png` });
      const blockedName = await answer(await resolveAs('db.corp.test'));
      const metadataName = await answer(await resolveAs('metadata.corp.test'));
      const missingName = await answer(await resolveAs('nowhere.corp.test'));
      const expected = (host: string) => ({ status: 400, code: 'remote_fetch_blocked', error: `${host} does not resolve to a public address`, details: { reason: 'no_public_address' } });
      expect(blockedName).toEqual(expected('db.corp.test'));
      expect(metadataName).toEqual(expected('metadata.corp.test'));
      expect(missingName).toEqual(expected('nowhere.corp.test'));
      // An address the caller wrote is no secret: its range is still named.
      expect(await answer(await post(user, { type: 'remote_url', url: 'http://10.1.2.3/a.png' }))).toMatchObject({
        status: 400,
        code: 'remote_fetch_blocked',
        details: { reason: 'address', range: 'private' },
      });
    });
  });

  describe('S3 unreachable', () => {
    let app: TestApp;
    beforeAll(async () => {
      // A loopback port nothing listens on.
      const closed = await freePort();
      app = await startTestApp({
        env: {
          MEDIA_RATE_LIMIT: '0',
          MEDIA_STORAGE_BACKEND: 's3',
          MEDIA_S3_BUCKET: 'jan-media-down',
          MEDIA_S3_ENDPOINT: `http://127.0.0.1:${closed}`,
          MEDIA_S3_REGION: 'us-east-1',
          MEDIA_S3_USE_PATH_STYLE: 'true',
          MEDIA_S3_ACCESS_KEY_ID: 'test',
          MEDIA_S3_SECRET_ACCESS_KEY: 'test-secret',
        },
      });
    });
    afterAll(async () => {
      await app?.close();
    });

    it('answers 503 storage_unavailable with Retry-After, and /readyz 503 with Retry-After', async () => {
      const body = JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(await uniquePng()) } });
      const res = await app.call('/v1/media', { method: 'POST', user: uniqueUser('errors'), body });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('2');
      expect(await res.json()).toMatchObject({ code: 'storage_unavailable' });
      const ready = await fetch(`${app.baseUrl}/readyz`);
      expect(ready.status).toBe(503);
      expect(ready.headers.get('retry-after')).toBe('2');
    });
  });
});
