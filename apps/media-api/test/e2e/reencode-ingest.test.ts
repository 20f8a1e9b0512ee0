import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { dataUrl, uniqueUser } from '../support/images';
import { startTestApp, type TestApp } from '../support/test-app';

/**
 * Ingest with MEDIA_REENCODE=strip through the whole service: the re-encoded copy is what is
 * stored and served (no EXIF), the response describes those bytes, and both the original and the
 * stored copy dedupe to the same object. Small images take the in-memory staging path and large
 * ones the temp-file path; both are exercised.
 */
describe('ingest with re-encoding (strip)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ env: { MEDIA_REENCODE: 'strip' } });
  });
  afterAll(async () => {
    await app?.close();
  });

  async function photo(width: number, height: number): Promise<Buffer> {
    const pixels = Buffer.alloc(width * height * 3);
    for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7919) % 251;
    return sharp(pixels, { raw: { width, height, channels: 3 } })
      .jpeg({ quality: 95 })
      .withExif({ IFD0: { Make: 'AcmeCam', Model: 'X1' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 29/1' } })
      .toBuffer();
  }

  it.each([
    ['a small photo (staged in memory)', 64, 48],
    ['a large photo (spooled to a temp file)', 1600, 1200],
  ])('stores and serves %s without its EXIF, and dedupes the original and the stored copy', async (_name, width, height) => {
    const user = uniqueUser('reencode');
    const original = await photo(width, height);
    expect(original.includes('AcmeCam')).toBe(true);
    if (width > 1000) expect(original.length).toBeGreaterThan(1024 * 1024);

    const first = await app.call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(original, 'image/jpeg') } }) });
    expect(first.status).toBe(200);
    const created = (await first.json()) as { id: string; bytes: number; sha256: string; deduped: boolean };
    expect(created.deduped).toBe(false);

    const served = await app.call(`/v1/media/${created.id}`, { user });
    expect(served.status).toBe(200);
    const stored = Buffer.from(await served.arrayBuffer());
    expect(stored.includes('AcmeCam')).toBe(false);
    expect((await sharp(stored).metadata()).exif).toBeUndefined();
    expect(stored.length).toBe(created.bytes);
    expect(createHash('sha256').update(stored).digest('hex')).toBe(created.sha256);

    for (const bytes of [original, stored]) {
      const again = await app.call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(bytes, 'image/jpeg') } }) });
      expect(await again.json()).toMatchObject({ id: created.id, deduped: true });
    }
  });
});

/**
 * The re-encoded copy obeys MEDIA_MAX_BYTES as uploads do: a stored copy above it could never be
 * uploaded again (413) to dedupe. A small, heavily compressed JPEG grows when re-encoded at
 * quality 92 and is refused; a copy within the limit is stored and dedupes when sent back.
 */
describe('ingest with re-encoding under a small MEDIA_MAX_BYTES', () => {
  const maxBytes = 8000;
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ env: { MEDIA_REENCODE: 'strip', MEDIA_MAX_BYTES: String(maxBytes) } });
  });
  afterAll(async () => {
    await app?.close();
  });

  /** Busy pixels at JPEG quality 20: a few KB that re-encoding at quality 92 nearly doubles. */
  async function lowQualityJpeg(size: number): Promise<Buffer> {
    const pixels = Buffer.alloc(size * size * 3);
    for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7919 + (i >> 5) * 31) % 251;
    return sharp(pixels, { raw: { width: size, height: size, channels: 3 } }).jpeg({ quality: 20 }).toBuffer();
  }

  const post = (user: string, bytes: Buffer) =>
    app.call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(bytes, 'image/jpeg') } }) });

  it('refuses an upload whose re-encoded copy exceeds MEDIA_MAX_BYTES as 422 image_too_large and stores nothing', async () => {
    const user = uniqueUser('reencode-cap');
    const original = await lowQualityJpeg(256);
    expect(original.length).toBeLessThan(maxBytes);

    const answer = await post(user, original);
    expect(answer.status).toBe(422);
    expect(await answer.json()).toMatchObject({ code: 'image_too_large', details: { reason: 'reencoded_size', max_bytes: maxBytes } });
    const usage = await app.call('/v1/usage', { user });
    expect(await usage.json()).toMatchObject({ objects: 0, bytes: 0 });
  });

  it('stores a copy within MEDIA_MAX_BYTES, and that copy sent back dedupes', async () => {
    const user = uniqueUser('reencode-cap');
    const original = await lowQualityJpeg(96);
    const first = await post(user, original);
    expect(first.status).toBe(200);
    const created = (await first.json()) as { id: string; bytes: number };
    expect(created.bytes).toBeLessThanOrEqual(maxBytes);

    const stored = Buffer.from(await (await app.call(`/v1/media/${created.id}`, { user })).arrayBuffer());
    expect(stored.length).toBe(created.bytes);
    const again = await post(user, stored);
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ id: created.id, deduped: true });
  });
});
