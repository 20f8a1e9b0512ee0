import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { auditRows } from '../support/audit-rows';
import { EICAR, dataUrl, pngImage, uniqueUser, withTextChunk } from '../support/images';
import { startTestApp, type TestApp } from '../support/test-app';

/** The malware hook end to end: the built app, real clamd (scripts/test.mjs), PostgreSQL, local disk. */
describe('content scanning with clamd', () => {
  let app: TestApp;
  beforeAll(async () => {
    const address = process.env.TEST_CLAMD_ADDRESS;
    if (!address) throw new Error('TEST_CLAMD_ADDRESS is not set: run the suite with `pnpm test` (scripts/test.mjs starts clamd)');
    app = await startTestApp({ env: { MEDIA_SCANNER: 'clamd', MEDIA_SCANNER_CLAMD_ADDRESS: address } });
  });
  afterAll(async () => {
    await app?.close();
  });

  const ingest = (user: string, bytes: Buffer) =>
    app.call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(bytes) } }) });
  const rowsOf = async (user: string) =>
    (await app.running.database.writer.query('SELECT id FROM media_api.media_objects WHERE created_by = $1', [user])) as unknown[];
  const storedFiles = async () => (await readdir(join(app.running.config.localStoragePath, 'images')).catch(() => [] as string[])).length;

  it('reports the scanner in /readyz and stores a clean image', async () => {
    const ready = await fetch(`${app.baseUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as any).info.scanner.status).toBe('up');
    expect((await ingest(uniqueUser(), await pngImage(101))).status).toBe(200);
  });

  it('refuses an infected image with 422 content_rejected, stores nothing, and audits the signature (not sent to the client)', async () => {
    const user = uniqueUser();
    const before = await storedFiles();
    const requestId = `scan-${user}`;
    const res = await app.call('/v1/media', {
      method: 'POST',
      user,
      headers: { 'x-request-id': requestId },
      body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(withTextChunk(await pngImage(102), EICAR)) } }),
    });
    expect(res.status).toBe(422);
    const body = (await res.json()) as any;
    expect(body).toMatchObject({ code: 'content_rejected' });
    expect(JSON.stringify(body)).not.toContain('Eicar');
    expect(await rowsOf(user)).toEqual([]);
    expect(await storedFiles()).toBe(before);
    const [audit] = await auditRows(app, 'request_id = $1', [requestId]);
    expect(audit).toMatchObject({ outcome: 'failure', reason_code: 'content_rejected', details: { source: 'data_url', scanner_reason: 'Jan-Test-Eicar.UNOFFICIAL' } });
  });

  it('scans direct uploads on complete and discards an infected one', async () => {
    const user = uniqueUser();
    const prepared = (await (await app.call('/v1/media/prepare-upload', { method: 'POST', user, body: JSON.stringify({ mime_type: 'image/png' }) })).json()) as any;
    await fetch(prepared.upload_url, { method: 'PUT', headers: { 'content-type': 'image/png' }, body: withTextChunk(await pngImage(103), EICAR) });
    const complete = await app.call(`/v1/media/${prepared.id}/complete`, { method: 'POST', user });
    expect(complete.status).toBe(422);
    expect(((await complete.json()) as any).code).toBe('content_rejected');
    expect((await app.call(`/v1/media/${prepared.id}`, { user })).status).toBe(404);
    expect(await rowsOf(user)).toEqual([]);
  });
});

describe('content scanning with clamd down', () => {
  it('fails uploads closed with 503 scanner_unavailable and takes /readyz down', async () => {
    const app = await startTestApp({ env: { MEDIA_SCANNER: 'clamd', MEDIA_SCANNER_CLAMD_ADDRESS: '127.0.0.1:1', MEDIA_SCANNER_TIMEOUT: '2s' } });
    try {
      const user = uniqueUser();
      const res = await app.call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(await pngImage(104)) } }) });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('2');
      expect(((await res.json()) as any).code).toBe('scanner_unavailable');
      expect(await app.running.database.writer.query('SELECT id FROM media_api.media_objects WHERE created_by = $1', [user])).toEqual([]);
      const ready = await fetch(`${app.baseUrl}/readyz`);
      expect(ready.status).toBe(503);
      expect(ready.headers.get('retry-after')).toBe('2');
      expect(((await ready.json()) as any).error.scanner.status).toBe('down');
    } finally {
      await app.close();
    }
  });
});
