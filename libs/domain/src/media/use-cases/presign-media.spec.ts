import { newMediaId } from '@jan/mediaid';
import type { Principal } from '../../access/principal';
import { createUseCaseTestbed, pngBytes } from '../../testing';
import { attachment } from './presign-media';

describe('PresignMedia: expiresInSeconds', () => {
  async function signedUpTestbed() {
    const t = createUseCaseTestbed({ policy: { presignTtlSeconds: 900 } });
    // Mid-second, as a real clock almost always is: the URL's expiry sits on the signing second.
    t.clock.set(new Date('2026-01-01T00:00:00.700Z'));
    const alice: Principal = { kind: 'user', subject: 'alice' };
    const { media } = await t.upload(alice, pngBytes('expiry'));
    return { t, alice, media };
  }

  it('is exactly the TTL for a freshly signed URL, whatever the millisecond, and expiresAt is the signing second plus the TTL', async () => {
    const { t, alice, media } = await signedUpTestbed();
    t.clock.set(new Date('2026-01-01T00:00:01.999Z'));
    const { signed } = await t.presign.presign(alice, media.id, { download: true });
    expect(signed.expiresInSeconds).toBe(900);
    expect(signed.expiresAt.toISOString()).toBe('2026-01-01T00:15:01.000Z');
    const reissued = await t.admin.reissue({ kind: 'admin', adminId: 'ops', actingFor: null }, media.id, 60);
    expect(reissued.signed.expiresInSeconds).toBe(60);
  });

  it('is the whole seconds left, rounded up, for a cached URL: the TTL within the signing second, less later', async () => {
    const { t, alice, media } = await signedUpTestbed();
    t.clock.set(new Date('2026-01-01T00:00:02.100Z'));
    const first = (await t.presign.presign(alice, media.id)).signed;
    expect(first.expiresInSeconds).toBe(900);
    t.clock.set(new Date('2026-01-01T00:00:02.950Z'));
    const sameSecond = (await t.presign.presign(alice, media.id)).signed;
    expect(sameSecond.url).toBe(first.url);
    expect(sameSecond.expiresInSeconds).toBe(900);
    t.clock.set(new Date('2026-01-01T00:05:00.400Z'));
    const later = (await t.presign.presign(alice, media.id)).signed;
    expect(later.url).toBe(first.url);
    // 00:15:02.000 − 00:05:00.400 = 601.6 s
    expect(later.expiresInSeconds).toBe(602);
  });
});

describe('attachment', () => {
  const id = newMediaId();
  const storageKey = `images/${id}.png`;
  // RFC 8187 ext-value: charset '' then attr-chars and %XX only.
  const EXT_VALUE = /^UTF-8''(?:[A-Za-z0-9!#$&+.^_`|~-]|%[0-9A-F]{2})*$/;

  it.each(["it's (1)*.png", 'naïve ☃.png', 'a;b=c 100%.png', 'plain.png'])('writes filename* for %j as a valid ext-value that decodes back', (filename) => {
    const header = attachment({ id, storageKey, filename });
    const extended = /; filename\*=(\S+)$/.exec(header)?.[1] ?? '';
    expect(extended).toMatch(EXT_VALUE);
    expect(decodeURIComponent(extended.slice("UTF-8''".length))).toBe(filename);
  });

  it.each([
    ['invoice.html', 'invoice.html.png'],
    ['noext', 'noext.png'],
    ['Cat.PNG', 'Cat.PNG'],
  ])('ends the name %j with the served extension: %j', (filename, named) => {
    expect(attachment({ id, storageKey, filename })).toBe(`attachment; filename="${named}"; filename*=UTF-8''${named}`);
  });

  it('takes .jpeg for .jpg and .tif for .tiff', () => {
    expect(attachment({ id, storageKey: `images/${id}.jpg`, filename: 'a.JPEG' })).toMatch(/^attachment; filename="a\.JPEG";/);
    expect(attachment({ id, storageKey: `images/${id}.tiff`, filename: 'scan.tif' })).toMatch(/^attachment; filename="scan\.tif";/);
    expect(attachment({ id, storageKey: `images/${id}.jpg`, filename: 'a.png' })).toMatch(/^attachment; filename="a\.png\.jpg";/);
  });

  it('names an object without a filename by its id', () => {
    expect(attachment({ id, storageKey, filename: null })).toBe(`attachment; filename="${id}.png"; filename*=UTF-8''${id}.png`);
  });
});
