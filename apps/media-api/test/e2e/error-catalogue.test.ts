import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CODES } from '@jan/domain';
import { STATUS_BY_CODE } from '../../src/http/status-table';
import { dataUrl, uniqueUser } from '../support/images';
import { startTestApp, type TestApp } from '../support/test-app';
import { uniquePng } from '../support/unique-image';

const ADMIN_KEY = 'e2e-catalogue-admin-key-0123456789';
const ROOT = join(__dirname, '../../../..');

/** The service's own source (not its tests, not the SDK or the CLI), all of it as one text. */
function serviceSource(): string {
  const dirs = [join(ROOT, 'apps/media-api/src'), ...readdirSync(join(ROOT, 'libs')).filter((lib) => lib !== 'llm-client').map((lib) => join(ROOT, 'libs', lib, 'src'))];
  const files = dirs.flatMap((dir) => readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts') && !f.endsWith('.spec.ts')).map((f) => join(dir, f)));
  return files.map((file) => readFileSync(file, 'utf8')).join('\n');
}

/**
 * Where a code is given to a client: thrown (`new DomainError('x'`, `new HttpError('x'`, a
 * DomainError subclass's `super('x'`), a signature check's `reason: 'x'` (thrown as a DomainError),
 * or a framework error's entry in a mapping table (`code: 'x'`, `['x', …]`). Not the catalogue's
 * own lists, and not an audit `reasonCode`.
 */
const producedAt = (code: string) => new RegExp(`(?:(?:DomainError|HttpError)\\(\\s*|super\\(\\s*|(?<![A-Za-z_])(?:code|reason): |\\[)'${code}'`);

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

  describe('documented codes', () => {
    it('are all produced by the service: no code in docs/api.md that nothing answers with', async () => {
      const documented = [...readFileSync(join(ROOT, 'docs/api.md'), 'utf8').matchAll(/^\| `([a-z_]+)` \| \d{3} \|/gm)].map((m) => m[1]!);
      expect(documented.length).toBeGreaterThan(30);
      // mapError's translation of a Nest HttpException by its status produces a code only when
      // something raises that exception: those lines alone are no producer.
      const source = serviceSource().replace(/^\s*if \(status === \d+\) return \{[^\n]*$/gm, '');
      // The one code only such a translation gives: Nest's router (and AdminGuard) raise
      // NotFoundException, seen here on a real request.
      const raised = new Set(['route_not_found']);
      expect(await answer(await fetch(`${app.baseUrl}/v1/no-such-route`))).toEqual({ status: 404, code: 'route_not_found' });
      expect(documented.filter((code) => !raised.has(code) && !producedAt(code).test(source))).toEqual([]);
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
        if (['route_not_found', 'method_not_allowed', 'request_timeout', 'headers_too_large', 'invalid_signature', 'url_expired', 'internal_error'].includes(code)) continue;
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
