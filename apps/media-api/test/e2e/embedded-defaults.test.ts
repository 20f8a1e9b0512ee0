import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApp } from '../support/test-app';
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
});
