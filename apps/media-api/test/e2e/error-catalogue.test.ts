import { ERROR_CODES } from '@jan/domain';
import { STATUS_BY_CODE } from '../../src/http/status-table';
import { dataUrl, uniqueUser } from '../support/images';
import { startTestApp, type TestApp } from '../support/test-app';
import { uniquePng } from '../support/unique-image';

const ADMIN_KEY = 'e2e-catalogue-admin-key-0123456789';

/**
 * The error catalogue over real HTTP: client mistakes get a stable code and a 4xx (never a 500),
 * and the OpenAPI document the app serves names every code at its status.
 */
describe('error catalogue', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ env: { MEDIA_RATE_LIMIT: '0', MEDIA_ADMIN_KEY: ADMIN_KEY } });
  });
  afterAll(async () => {
    await app?.close();
  });

  const admin = (path: string, init: RequestInit = {}) =>
    fetch(app.baseUrl + path, { ...init, headers: { 'x-media-admin-key': ADMIN_KEY, 'content-type': 'application/json' } });
  const answer = async (res: Response) => ({ status: res.status, code: ((await res.json()) as { code: string }).code });

  describe('admin owner filters', () => {
    it.each([
      ['a NUL in the list filter', () => admin('/v1/admin/media?owner=a%00b')],
      ['a control character in the list filter', () => admin('/v1/admin/media?owner=a%01b')],
      ['a NUL in the usage owner', () => admin('/v1/admin/usage?owner=a%00')],
      ['a NUL in the purge owner', () => admin('/v1/admin/media/purge', { method: 'POST', body: JSON.stringify({ owner: 'a\u0000', dry_run: true }) })],
    ])('refuses %s with 400 invalid_request', async (_name, request) => {
      expect(await answer(await request())).toEqual({ status: 400, code: 'invalid_request' });
    });

    it('still accepts any owner an object can have, non-ASCII included', async () => {
      expect((await admin(`/v1/admin/usage?owner=${encodeURIComponent('ü🎉')}`)).status).toBe(200);
      expect((await admin(`/v1/admin/media?owner=${encodeURIComponent('service:svc')}`)).status).toBe(200);
    });
  });

  describe('purge filters sent as null', () => {
    it('reads a null filter as an absent one', async () => {
      const owner = uniqueUser('catalogue');
      const ingest = await app.call('/v1/media', { method: 'POST', user: owner, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(await uniquePng()) } }) });
      const { id } = (await ingest.json()) as { id: string };
      const res = await admin('/v1/admin/media/purge', { method: 'POST', body: JSON.stringify({ ids: null, expired: null, owner, dry_run: true }) });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ purged: [id], dry_run: true });
    });

    it('refuses a body whose every filter is null with 400 invalid_request', async () => {
      const res = await admin('/v1/admin/media/purge', { method: 'POST', body: JSON.stringify({ ids: null, owner: null, expired: null }) });
      expect(await answer(res)).toEqual({ status: 400, code: 'invalid_request' });
    });
  });

  describe('the OpenAPI document', () => {
    type Operation = { responses: Record<string, { description?: string }> };
    let doc: { paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, { properties: { code: { enum: string[] } } }> } };
    beforeAll(async () => {
      doc = (await (await fetch(`${app.baseUrl}/docs/openapi.json`)).json()) as typeof doc;
    });

    it('lists every code of the status table, every domain code among them, in the Error schema', () => {
      const codes = doc.components.schemas['Error'].properties.code.enum;
      expect([...codes].sort()).toEqual(Object.keys(STATUS_BY_CODE).sort());
      expect(codes).toEqual(expect.arrayContaining([...ERROR_CODES]));
    });

    it('names, at every error status a route documents, every code that status has', () => {
      // The API's routes; /readyz's 503 is the health report, not the error body.
      const operations = Object.entries(doc.paths).filter(([path]) => path.startsWith('/v1/')).flatMap(([, item]) => Object.values(item));
      const missing: string[] = [];
      for (const [code, status] of Object.entries(STATUS_BY_CODE)) {
        // Codes not tied to any documented route: the router's own, and those of the local backend's signed URLs.
        if (['route_not_found', 'method_not_allowed', 'request_timeout', 'headers_too_large', 'forbidden', 'invalid_signature', 'url_expired', 'internal_error'].includes(code)) continue;
        const descriptions = operations.map((op) => op.responses[String(status)]?.description).filter((d): d is string => !!d);
        if (!descriptions.length || !descriptions.every((d) => d.includes(`\`${code}\``))) missing.push(`${status} ${code}`);
      }
      expect(missing).toEqual([]);
    });

    it('documents 422 wherever an Idempotency-Key is honoured', () => {
      for (const [method, path] of [
        ['post', '/v1/media'],
        ['post', '/v1/media/upload'],
        ['post', '/v1/media/prepare-upload'],
        ['post', '/v1/media/{id}/complete'],
        ['post', '/v1/admin/media/purge'],
      ]) {
        expect({ route: `${method} ${path}`, description: doc.paths[path][method].responses['422']?.description }).toEqual({
          route: `${method} ${path}`,
          description: expect.stringContaining('`idempotency_key_reused`'),
        });
      }
    });
  });
});
