import { constants, crc32, deflateRawSync, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { plainPngDecodes } from '../../src/infrastructure/images/png-check';

/**
 * The cheap PNG decode check against the decoder it stands in for. Its one promise: a PNG it
 * accepts is a PNG that sharp decodes whole with the inspector's options (`failOn: 'error'`).
 * Everything it does not accept goes to sharp, so refusing too much costs speed, never a verdict.
 * The corpus is built here, by sharp and by a small encoder with every knob exposed, and then
 * mutated thousands of ways, with and without the chunk CRCs repaired.
 */

const SIGNATURE = Buffer.from('89504e470d0a1a0a', 'hex');

function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** A pseudo-random generator with a seed, so a failure names a case that can be replayed. */
function random(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 4: 2, 6: 4 };

interface Encoding {
  width: number;
  height: number;
  depth: number;
  colourType: number;
  seed: number;
  /** Chunks between IHDR and the first IDAT, and between the last IDAT and IEND. */
  before?: Buffer[];
  after?: Buffer[];
  /** Split the zlib stream over this many IDAT chunks. */
  idats?: number;
  /** Filter byte per row (default: cycles through 0–4). */
  filter?: (row: number) => number;
  /** Change the inflated bytes before compression (a row too short, too long…). */
  rawEdit?: (raw: Buffer) => Buffer;
  /** Change the compressed stream (garbage after its end, a broken Adler-32…). */
  zlibEdit?: (z: Buffer) => Buffer;
  interlace?: number;
}

function encode(e: Encoding): Buffer {
  const rowBytes = Math.ceil((e.width * CHANNELS[e.colourType] * e.depth) / 8);
  const next = random(e.seed);
  let raw: Buffer = Buffer.alloc(e.height * (rowBytes + 1));
  for (let row = 0; row < e.height; row++) {
    const at = row * (rowBytes + 1);
    raw[at] = e.filter ? e.filter(row) : row % 5;
    for (let i = 1; i <= rowBytes; i++) raw[at + i] = Math.floor(next() * 256);
  }
  if (e.rawEdit) raw = e.rawEdit(raw);
  let z: Buffer = deflateSync(raw);
  if (e.zlibEdit) z = e.zlibEdit(z);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(e.width, 0);
  ihdr.writeUInt32BE(e.height, 4);
  ihdr[8] = e.depth;
  ihdr[9] = e.colourType;
  ihdr[12] = e.interlace ?? 0;
  const parts = e.idats ?? 1;
  const size = Math.ceil(z.length / parts);
  const idats = Array.from({ length: parts }, (_, i) => chunk('IDAT', z.subarray(i * size, (i + 1) * size)));
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), ...(e.before ?? []), ...idats, ...(e.after ?? []), chunk('IEND', Buffer.alloc(0))]);
}

const text = (keyword: string, value: string) => chunk('tEXt', Buffer.from(`${keyword}\0${value}`, 'latin1'));
const phys = (unit = 1) => chunk('pHYs', Buffer.from([0, 0, 0x0b, 0x13, 0, 0, 0x0b, 0x13, unit]));
const gama = (value = 45455) => chunk('gAMA', Buffer.from([value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255]));
const srgb = (intent = 0) => chunk('sRGB', Buffer.from([intent]));

/** What the inspector's whole decode asks of sharp. */
async function sharpDecodes(png: Buffer): Promise<boolean> {
  try {
    await sharp(png, { failOn: 'error', sequentialRead: true, limitInputPixels: 50_000_000 }).raw().toBuffer();
    return true;
  } catch {
    return false;
  }
}

/** The chunks of a PNG: where each starts and ends, to mutate one and repair its CRC. */
function chunks(png: Buffer): { start: number; end: number; type: string }[] {
  const out = [];
  for (let at = 8; at + 12 <= png.length; ) {
    const length = png.readUInt32BE(at);
    if (at + 12 + length > png.length) break;
    out.push({ start: at, end: at + 12 + length, type: png.toString('latin1', at + 4, at + 8) });
    at += 12 + length;
  }
  return out;
}

function repairCrcs(png: Buffer): Buffer {
  const out = Buffer.from(png);
  for (const c of chunks(out)) out.writeUInt32BE(crc32(out.subarray(c.start + 4, c.end - 4)), c.end - 4);
  return out;
}

const SEEDS = [1, 2, 3];
const CORPUS: Encoding[] = [];
for (const seed of SEEDS) {
  for (const [colourType, depths] of [[0, [1, 2, 4, 8, 16]], [2, [8, 16]], [4, [8, 16]], [6, [8, 16]]] as const) {
    for (const depth of depths) {
      for (const [width, height] of [[1, 1], [7, 3], [33, 17]]) {
        CORPUS.push({ width, height, depth, colourType, seed, idats: 1 + (seed % 3), before: seed === 2 ? [phys(), gama(), srgb()] : [], after: [text('Comment', `seed ${seed}`)] });
      }
    }
  }
}

/** The zlib stream with its header's window size (CINFO) set to 2^(8 + cinfo), FCHECK repaired. */
function withWindow(z: Buffer, cinfo: number): Buffer {
  const out = Buffer.from(z);
  out[0] = (cinfo << 4) | 8;
  out[1] &= 0xe0;
  out[1] += (31 - ((out[0] * 256 + out[1]) % 31)) % 31;
  return out;
}

/**
 * Structure-aware mutants: valid rows (or rows a byte short or long, or a bad filter byte) in
 * every colour type and depth at odd widths, compressed every way zlib can (stored, fixed,
 * dynamic, Huffman-only, RLE, windows of 512 B to 32 KiB, a header that lies about its window,
 * empty stored blocks, hand-made stored blocks with a bad NLEN, two deflate streams back to back,
 * a block after the final one, a preset dictionary), split over IDATs at random bytes with
 * zero-length IDATs anywhere, then a duplicate IHDR or IEND, a swap of two chunks, or a stray
 * chunk among the IDATs.
 */
function structuredMutant(next: () => number): Buffer {
  const pick = <T>(values: readonly T[]): T => values[Math.floor(next() * values.length)];
  const colourType = pick([0, 2, 4, 6]);
  const depth = colourType === 0 ? pick([1, 2, 4, 8, 16]) : pick([8, 16]);
  const width = 1 + Math.floor(next() * (next() < 0.5 ? 9 : 400));
  const height = 1 + Math.floor(next() * 12);
  const rowBytes = Math.ceil((width * CHANNELS[colourType] * depth) / 8);
  let raw: Buffer = Buffer.alloc(height * (rowBytes + 1));
  // Rows that repeat make the encoder reach back one row: far, for a wide image.
  const repeat = next() < 0.5;
  const first = Buffer.from(Array.from({ length: rowBytes }, () => Math.floor(next() * 256)));
  for (let row = 0; row < height; row++) {
    const at = row * (rowBytes + 1);
    raw[at] = next() < 0.02 ? 5 + Math.floor(next() * 251) : Math.floor(next() * 5);
    for (let i = 0; i < rowBytes; i++) raw[at + 1 + i] = repeat ? first[i] : Math.floor(next() * 256);
  }
  if (next() < 0.05) raw = raw.subarray(0, raw.length - 1 - Math.floor(next() * 3));
  if (next() < 0.05) raw = Buffer.concat([raw, Buffer.alloc(1 + Math.floor(next() * 3))]);

  const { Z_DEFAULT_STRATEGY, Z_FIXED, Z_HUFFMAN_ONLY, Z_RLE, Z_FILTERED, Z_SYNC_FLUSH } = constants;
  const windowBits = 9 + Math.floor(next() * 7);
  let deflated = deflateRawSync(raw, { windowBits, level: Math.floor(next() * 10), strategy: pick([Z_DEFAULT_STRATEGY, Z_FIXED, Z_HUFFMAN_ONLY, Z_RLE, Z_FILTERED]) });
  let cinfo = windowBits - 8;
  const emptyStored = (final: boolean) => Buffer.from([final ? 1 : 0, 0, 0, 0xff, 0xff]);
  switch (Math.floor(next() * 8)) {
    case 1:
      cinfo = Math.floor(next() * 8);
      break;
    case 2:
      deflated = Buffer.concat([...Array.from({ length: 1 + Math.floor(next() * 3) }, () => emptyStored(false)), deflated]);
      break;
    case 3: {
      const blocks: Buffer[] = [];
      for (let at = 0; at < raw.length; ) {
        const size = Math.min(raw.length - at, 1 + Math.floor(next() * 40));
        const header = Buffer.alloc(5);
        header[0] = at + size >= raw.length ? 1 : 0;
        header.writeUInt16LE(size, 1);
        header.writeUInt16LE(size ^ (next() < 0.05 ? 0xfffe : 0xffff), 3);
        blocks.push(header, raw.subarray(at, at + size));
        at += size;
      }
      deflated = Buffer.concat(blocks);
      break;
    }
    case 4: {
      const half = Math.floor(next() * raw.length);
      deflated = Buffer.concat([deflateRawSync(raw.subarray(0, half), { finishFlush: Z_SYNC_FLUSH }), deflateRawSync(raw.subarray(half))]);
      break;
    }
    case 5:
      deflated = Buffer.concat([deflated, emptyStored(true)]);
      break;
    case 6:
      cinfo = pick([0, 1, 2]);
      break;
  }
  const dictionary = next() < 0.04;
  const header = Buffer.from([(cinfo << 4) | 8, dictionary ? 0x20 : 0]);
  header[1] += (31 - ((header[0] * 256 + header[1]) % 31)) % 31;
  const adler = Buffer.alloc(4);
  adler.writeUInt32BE(adler32(raw));
  const z = Buffer.concat([header, dictionary ? Buffer.from([0, 0, 0, 1]) : Buffer.alloc(0), deflated, adler]);

  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = depth;
  ihdr[9] = colourType;
  const ihdrChunk = chunk('IHDR', ihdr);
  const idats: Buffer[] = next() < 0.1 ? [chunk('IDAT', Buffer.alloc(0))] : [];
  const cuts = Array.from({ length: Math.floor(next() * 4) }, () => Math.floor(next() * (z.length + 1))).sort((a, b) => a - b);
  let from = 0;
  for (const cut of [...cuts, z.length]) {
    idats.push(chunk('IDAT', z.subarray(from, cut)));
    if (next() < 0.1) idats.push(chunk('IDAT', Buffer.alloc(0)));
    from = cut;
  }
  const sequence = [ihdrChunk, ...idats, chunk('IEND', Buffer.alloc(0))];
  const somewhere = () => 1 + Math.floor(next() * (sequence.length - 1));
  switch (Math.floor(next() * 8)) {
    case 0:
      sequence.splice(somewhere(), 0, ihdrChunk);
      break;
    case 1:
      sequence.push(chunk('IEND', Buffer.alloc(0)));
      break;
    case 2:
      sequence.splice(somewhere(), 0, chunk('IEND', Buffer.alloc(0)));
      break;
    case 3: {
      const [i, j] = [Math.floor(next() * sequence.length), Math.floor(next() * sequence.length)];
      [sequence[i], sequence[j]] = [sequence[j], sequence[i]];
      break;
    }
    case 4:
      sequence.splice(somewhere(), 0, chunk(pick(['tEXt', 'gAMA', 'PLTE', 'tRNS', 'bKGD', 'IDAT', 'IEND', 'IHDR']), Buffer.from([0, 0, 0, 1])));
      break;
  }
  return Buffer.concat([SIGNATURE, ...sequence]);
}

function adler32(data: Buffer): number {
  let a = 1;
  let b = 0;
  for (const byte of data) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

describe('plainPngDecodes', () => {
  it('accepts plain PNGs from sharp and from the hand encoder, all of which sharp decodes', async () => {
    const fromSharp = [];
    for (const channels of [1, 2, 3, 4] as const) {
      const next = random(channels);
      const pixels = Buffer.from(Array.from({ length: 120 * 90 * channels }, () => Math.floor(next() * 256)));
      fromSharp.push(await sharp(pixels, { raw: { width: 120, height: 90, channels } }).png().toBuffer());
      fromSharp.push(await sharp(pixels, { raw: { width: 120, height: 90, channels } }).png({ compressionLevel: 0 }).toBuffer());
      fromSharp.push(await sharp(pixels, { raw: { width: 120, height: 90, channels } }).png({ adaptiveFiltering: true }).toBuffer());
    }
    fromSharp.push(await sharp({ create: { width: 640, height: 480, channels: 4, background: '#3366cc' } }).png().toBuffer());
    fromSharp.push(await sharp({ create: { width: 64, height: 64, channels: 3, background: '#ffffff' } }).toColourspace('rgb16').png().toBuffer());
    const handMade = CORPUS.map(encode);
    for (const png of [...fromSharp, ...handMade]) {
      expect(await sharpDecodes(png)).toBe(true);
      expect(await plainPngDecodes(png)).toBe(true);
    }
  });

  it('takes metadata chunks as libpng does: skipped, even malformed, before or after the pixels', async () => {
    const base: Encoding = { width: 8, height: 8, depth: 8, colourType: 2, seed: 9 };
    const cases: Record<string, Buffer> = {
      'sharp metadata (iCCP, eXIf, pHYs)': await sharp({ create: { width: 16, height: 16, channels: 3, background: '#0000ff' } }).withMetadata({ density: 144 }).png().toBuffer(),
      iCCP: encode({ ...base, before: [chunk('iCCP', Buffer.concat([Buffer.from('icc\0\0', 'latin1'), deflateSync(Buffer.alloc(100, 1))]))] }),
      'iCCP that does not inflate': encode({ ...base, before: [chunk('iCCP', Buffer.from('icc\0\0not zlib', 'latin1'))] }),
      'tRNS on grey': encode({ ...base, colourType: 0, before: [chunk('tRNS', Buffer.from([0, 1]))] }),
      'gAMA of zero': encode({ ...base, before: [gama(0)] }),
      'sRGB intent 4': encode({ ...base, before: [srgb(4)] }),
      'pHYs unit 2': encode({ ...base, before: [phys(2)] }),
      'gAMA after IDAT': encode({ ...base, after: [gama()] }),
      'two gAMA': encode({ ...base, before: [gama(), gama()] }),
      'tEXt keyword with a leading space': encode({ ...base, after: [text(' Comment', 'x')] }),
      'tEXt with a control character': encode({ ...base, after: [text('Comment', 'a\u0001b')] }),
      'an unknown ancillary chunk of 1 MB': encode({ ...base, before: [chunk('zzZz', Buffer.alloc(1 << 20))] }),
    };
    for (const [name, png] of Object.entries(cases)) {
      expect({ name, sharp: await sharpDecodes(png) }).toEqual({ name, sharp: true });
      expect({ name, check: await plainPngDecodes(png) }).toEqual({ name, check: true });
    }
  });

  it('leaves palette, interlaced, animated and unknown critical-chunk PNGs to sharp', async () => {
    const palette = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#ff0000' } }).png({ palette: true }).toBuffer();
    const interlaced = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#00ff00' } }).png({ progressive: true }).toBuffer();
    const base: Encoding = { width: 8, height: 8, depth: 8, colourType: 2, seed: 9 };
    const animated = encode({ ...base, before: [chunk('acTL', Buffer.from([0, 0, 0, 1, 0, 0, 0, 0]))] });
    const suggestedPalette = encode({ ...base, before: [chunk('PLTE', Buffer.alloc(6))] });
    const unknownCritical = encode({ ...base, before: [chunk('ABCD', Buffer.from('x'))] });
    const reservedBit = encode({ ...base, before: [chunk('abcd', Buffer.from('x'))] });
    for (const png of [palette, interlaced, animated, suggestedPalette, unknownCritical, reservedBit]) expect(await plainPngDecodes(png)).toBe(false);
    // Sharp decodes most of them; the check only declines to vouch for them.
    for (const png of [palette, interlaced, animated, suggestedPalette]) expect(await sharpDecodes(png)).toBe(true);
    expect(await sharpDecodes(unknownCritical)).toBe(false);
  });

  it('never accepts what it was built to catch: each one a PNG sharp refuses', async () => {
    const base: Encoding = { width: 33, height: 17, depth: 8, colourType: 6, seed: 4, idats: 2 };
    const cases: Record<string, Buffer> = {
      'filter byte 5': encode({ ...base, filter: (row) => (row === 16 ? 5 : 0) }),
      'filter byte 255': encode({ ...base, filter: (row) => (row === 0 ? 255 : 1) }),
      'a row short': encode({ ...base, rawEdit: (raw) => raw.subarray(0, raw.length - 1) }),
      'half the rows': encode({ ...base, rawEdit: (raw) => raw.subarray(0, raw.length >> 1) }),
      'broken Adler-32': encode({ ...base, zlibEdit: (z) => Buffer.concat([z.subarray(0, -1), Buffer.from([z[z.length - 1] ^ 0xff])]) }),
      'zlib stream cut off': encode({ ...base, zlibEdit: (z) => z.subarray(0, z.length - 10) }),
      'no IDAT': Buffer.concat([SIGNATURE, encode(base).subarray(8, 33), chunk('IEND', Buffer.alloc(0))]),
      'a bad CRC': (() => {
        const png = encode(base);
        png[png.length - 20] ^= 1;
        return png;
      })(),
    };
    for (const [name, png] of Object.entries(cases)) {
      const sharpSays = await sharpDecodes(png);
      expect({ name, sharp: sharpSays }).toEqual({ name, sharp: false });
      expect({ name, check: await plainPngDecodes(png) }).toEqual({ name, check: false });
    }
  });

  it('refuses what it cannot vouch for, even where sharp would be lenient', async () => {
    const base: Encoding = { width: 9, height: 9, depth: 8, colourType: 2, seed: 5 };
    const cases: Record<string, Buffer> = {
      'garbage after the zlib stream': encode({ ...base, zlibEdit: (z) => Buffer.concat([z, Buffer.from('trailing')]) }),
      'a row too many': encode({ ...base, rawEdit: (raw) => Buffer.concat([raw, raw.subarray(0, 28)]) }),
      'tEXt between IDATs': (() => {
        const png = encode({ ...base, idats: 2 });
        const [, first, second] = chunks(png);
        return Buffer.concat([png.subarray(0, first.end), text('Comment', 'x'), png.subarray(second.start)]);
      })(),
      'interlace method 2': encode({ ...base, interlace: 2 }),
      'a chunk after IEND': Buffer.concat([encode(base), text('Comment', 'x')]),
      'bit depth 4 with RGB': encode({ ...base, depth: 4 }),
      'width 0': encode({ ...base, width: 0 }),
      // sharp decodes this one; the structure check (polyglot-check.ts) refuses it as truncated.
      'cut off before IEND': encode(base).subarray(0, -12),
    };
    for (const [name, png] of Object.entries(cases)) expect({ name, check: await plainPngDecodes(png) }).toEqual({ name, check: false });
  });

  it('accepts no mutant that sharp refuses (byte flips, truncations, CRCs repaired or not)', async () => {
    const next = random(20261128);
    let accepted = 0;
    let mutants = 0;
    const disagreements: string[] = [];
    for (const [index, encoding] of CORPUS.entries()) {
      const original = encode(encoding);
      for (let round = 0; round < 24; round++) {
        const png = Buffer.from(original);
        const kind = round % 4;
        let mutant: Buffer;
        if (kind === 3) {
          mutant = png.subarray(0, 8 + Math.floor(next() * (png.length - 8)));
        } else {
          const flips = 1 + Math.floor(next() * 3);
          for (let f = 0; f < flips; f++) png[8 + Math.floor(next() * (png.length - 8))] ^= 1 + Math.floor(next() * 255);
          mutant = kind === 0 ? png : repairCrcs(png);
        }
        mutants++;
        if (!(await plainPngDecodes(mutant))) continue;
        accepted++;
        if (!(await sharpDecodes(mutant))) disagreements.push(`corpus ${index} round ${round}: ${mutant.toString('hex')}`);
      }
    }
    expect(disagreements).toEqual([]);
    expect(mutants).toBeGreaterThan(2000);
    // Some mutants are still valid PNGs (a flipped text byte, a pixel in a stored block); the
    // check must go on accepting those, or it would be refusing everything and proving nothing.
    expect(accepted).toBeGreaterThan(0);
  });

  it('trusts a back-reference only as far as the zlib header lets libpng reach (its window)', async () => {
    // Every row the same: the encoder copies each from the row before, 301 bytes back.
    const base: Encoding = { width: 100, height: 4, depth: 8, colourType: 2, seed: 10, filter: () => 0, rawEdit: (raw) => {
      for (let row = 1; row < 4; row++) raw.copy(raw, row * 301, 0, 301);
      return raw;
    } };
    const cases: [string, Buffer, boolean][] = [
      // A 256-byte window: libpng (inflating row by row, with the header's window) finds the
      // distance too far back; Node's zlib, given the whole output at once, does not.
      ['a 256-byte window reaching 301 bytes back', encode({ ...base, zlibEdit: (z) => withWindow(z, 0) }), false],
      ['a 2 KiB window over 1,204 bytes', encode({ ...base, zlibEdit: (z) => withWindow(z, 3) }), true],
      ['a 32 KiB window', encode(base), true],
    ];
    for (const [name, png, decodes] of cases) {
      expect({ name, sharp: await sharpDecodes(png) }).toEqual({ name, sharp: decodes });
      expect({ name, check: await plainPngDecodes(png) }).toEqual({ name, check: decodes });
    }
    // A window smaller than the image that no back-reference happens to pass: sharp decodes it,
    // but the check cannot tell without reading every distance, so it leaves it to sharp.
    const near = encode({ width: 300, height: 3, depth: 8, colourType: 0, seed: 11, zlibEdit: (z) => withWindow(z, 0) });
    expect(await sharpDecodes(near)).toBe(true);
    expect(await plainPngDecodes(near)).toBe(false);
  });

  it('accepts no structure-aware mutant that sharp refuses (zlib blocks and windows, IDAT splits, chunk order)', async () => {
    const next = random(20261129);
    let accepted = 0;
    const disagreements: string[] = [];
    for (let round = 0; round < 1500; round++) {
      const png = structuredMutant(next);
      if (!(await plainPngDecodes(png))) continue;
      accepted++;
      if (!(await sharpDecodes(png))) disagreements.push(`round ${round}`);
    }
    expect(disagreements).toEqual([]);
    expect(accepted).toBeGreaterThan(250);
  });

  it('walks at most 1,024 chunks: a file of thousands of empty chunks is left to sharp, off the event loop', async () => {
    const base: Encoding = { width: 8, height: 8, depth: 8, colourType: 2, seed: 12 };
    const empty = (type: string, count: number) => Array.from({ length: count }, () => chunk(type, Buffer.alloc(0)));
    // IHDR, the chunks, one IDAT, IEND.
    const within = encode({ ...base, before: empty('zzZz', 1021) });
    const past = encode({ ...base, before: empty('zzZz', 1022) });
    const idats = Buffer.concat([encode(base).subarray(0, -12), ...empty('IDAT', 5000), chunk('IEND', Buffer.alloc(0))]);
    for (const png of [within, past, idats]) expect(await sharpDecodes(png)).toBe(true);
    expect(await plainPngDecodes(within)).toBe(true);
    expect(await plainPngDecodes(past)).toBe(false);
    expect(await plainPngDecodes(idats)).toBe(false);
  });

  it('inflates on the event loop only when both the stream and its output are small', async () => {
    /** Whether the check let an already queued callback run before it answered. */
    const yields = async (png: Buffer) => {
      let ran = false;
      setImmediate(() => (ran = true));
      const verdict = await plainPngDecodes(png);
      return { verdict, yielded: ran };
    };
    const small = encode({ width: 64, height: 64, depth: 8, colourType: 6, seed: 13 });
    // The same image behind 1 MiB of empty fixed-Huffman blocks (four to every five bytes): 16 KiB
    // out, but ~10 ms of inflating, which the output's size alone does not foretell.
    const padded = encode({ width: 64, height: 64, depth: 8, colourType: 6, seed: 13, zlibEdit: (z) => {
      const empty = Buffer.alloc(5 * 200_000);
      for (let at = 0; at < empty.length; at += 5) empty.set([0x02, 0x08, 0x20, 0x80], at);
      return Buffer.concat([z.subarray(0, 2), empty, z.subarray(2)]);
    } });
    expect(await sharpDecodes(padded)).toBe(true);
    expect(await yields(small)).toEqual({ verdict: true, yielded: false });
    expect(await yields(padded)).toEqual({ verdict: true, yielded: true });
    expect(await yields(encode({ width: 600, height: 600, depth: 8, colourType: 6, seed: 7 }))).toEqual({ verdict: true, yielded: true });
  });

  it('inflates at most 4 MiB: a larger image is left to sharp, which decodes it through a shrink', async () => {
    // 2048 × 2048 grey: 4 MiB + 2 KiB of rows from a ~4 KiB stream.
    const png = encode({ width: 2048, height: 2048, depth: 8, colourType: 0, seed: 14, filter: () => 0, rawEdit: (raw) => raw.fill(0) });
    expect(png.length).toBeLessThan(16 * 1024);
    expect(await sharpDecodes(png)).toBe(true);
    expect(await plainPngDecodes(png)).toBe(false);
    expect(await plainPngDecodes(png, 2048 * 2049)).toBe(true);
  });

  it('declines images whose inflated size passes the cap, before inflating anything', async () => {
    const png = encode({ width: 64, height: 64, depth: 8, colourType: 6, seed: 6 });
    expect(await plainPngDecodes(png, 64 * (64 * 4 + 1))).toBe(true);
    expect(await plainPngDecodes(png, 64 * (64 * 4 + 1) - 1)).toBe(false);
  });

  it('inflates large images off the event loop and still checks every filter byte', async () => {
    // 600 × 600 RGBA: 1.4 MB inflated, past the on-loop limit.
    expect(await plainPngDecodes(encode({ width: 600, height: 600, depth: 8, colourType: 6, seed: 7 }))).toBe(true);
    expect(await plainPngDecodes(encode({ width: 600, height: 600, depth: 8, colourType: 6, seed: 7, filter: (row) => (row === 599 ? 9 : 0) }))).toBe(false);
  });
});
