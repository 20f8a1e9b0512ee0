import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApp, type TestApp } from '../support/test-app';
import { dataUrl, pngImage } from '../support/images';

/**
 * The README's first command: no DSN, no keys, no cloud. The embedded database, local disk and
 * generated secrets live in the data directory and survive a restart.
 */
describe('embedded defaults (no environment)', () => {
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'jan-media-embedded-'));
  });
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('serves ingest → GET → resolve, and keeps data, keys and ids across a restart', async () => {
    const png = await pngImage(42, 32);
    const first = await startTestApp({ engine: 'embedded', dataDir });
    let id: string;
    let key: string;
    try {
      expect(first.running.database.engine).toBe('embedded');
      key = (await readFile(join(dataDir, 'secrets', 'service-key'), 'utf8')).trim();
      expect(first.running.generatedServiceKey).toBe(key);

      const res = await first.call('/v1/media', {
        method: 'POST',
        user: 'u1',
        body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(png) } }),
      });
      expect(res.status).toBe(200);
      ({ id } = await res.json() as any);
      expect((await first.call('/readyz', { key: null })).status).toBe(200);
    } finally {
      await first.close();
    }

    const second = await startTestApp({ engine: 'embedded', dataDir });
    try {
      expect(second.running.config.serviceKeys).toEqual([key]);
      const again = await second.call('/v1/media', {
        method: 'POST',
        user: 'u1',
        body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(png) } }),
      });
      expect(await again.json() as any).toMatchObject({ id, deduped: true });

      const got = await second.call(`/v1/media/${id}`, { user: 'u1' });
      expect(Buffer.from(await got.arrayBuffer())).toEqual(png);

      const resolved = await second.call('/v1/media/resolve', {
        method: 'POST',
        user: 'u1',
        body: JSON.stringify({ payload: { image_url: { url: `data:image/png;base64,${id}` } } }),
      });
      const url = (await resolved.json() as any).payload.image_url.url;
      expect(Buffer.from(await (await fetch(url)).arrayBuffer())).toEqual(png);
    } finally {
      await second.close();
    }
  });
  it('refuses to start on a truncated service-key file rather than accepting an empty X-Media-Service-Key', async () => {
    const own = await mkdtemp(join(tmpdir(), 'jan-media-embedded-truncated-'));
    try {
      await (await startTestApp({ engine: 'embedded', dataDir: own })).close();
      // What a full disk, a crash while the file was first written or a bad restore leaves behind.
      await writeFile(join(own, 'secrets', 'service-key'), '');

      const started: TestApp | Error = await startTestApp({ engine: 'embedded', dataDir: own }).catch((error: Error) => error);
      if (!(started instanceof Error)) {
        try {
          const res = await fetch(`${started.baseUrl}/v1/usage`, { headers: { 'x-media-service-key': '', 'x-jan-user-id': 'u1' } });
          expect(res.status).toBe(401);
        } finally {
          await started.close();
        }
      }
      expect(started).toBeInstanceOf(Error);
      expect((started as Error).message).toContain(join(own, 'secrets', 'service-key'));
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  });
});
