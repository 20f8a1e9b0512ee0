import { promisify } from 'node:util';
import { crc32, inflate, inflateSync } from 'node:zlib';

/** What zlib answers with `info: true`: the output, and the engine that counted the input it used. */
interface InflateResult {
  buffer: Buffer;
  engine: { bytesWritten: number };
}

/**
 * Proves that a plain PNG decodes completely, without sharp: the cheap path of the decode check.
 *
 * Under load, sharp's whole decode of a 64 KiB PNG cost ~1,500 µs of CPU per upload, about 40% of a
 * new upload (docs/performance.md, "Fourteenth pass"): libvips' pipeline, its threads and the
 * hand-offs between them, for ~60 µs of inflating. For the PNGs that chat uploads mostly are, the
 * decoder's success depends only on what this check reads:
 *
 * - the chunk sequence and every chunk's CRC;
 * - a valid IHDR (size, bit depth and colour type, no interlacing);
 * - the IDAT stream: a complete zlib stream, Adler-32 included, with no bytes after its end,
 *   inflating to exactly one filter byte plus one row of samples per row, whose header's window
 *   covers the whole image or is the largest (32 KiB): libpng inflates row by row within that
 *   window, where Node's zlib, holding the whole output, would accept a longer back-reference;
 * - every filter byte at most 4.
 *
 * For grey, grey + alpha, RGB and RGBA every sample value is valid, so nothing after un-filtering
 * can fail. Ancillary chunks (metadata: text, colour profiles, EXIF…) may sit before or after the
 * IDATs, as libpng skips them, malformed or not. Palette images (their indices must fall inside
 * PLTE), interlaced and animated images, any other critical chunk, and anything odd at all answer
 * false: sharp decides those, as it does every image this check does not accept. The check only
 * ever says "decodes" or "ask the decoder"; it never refuses an image itself, so refusals keep
 * sharp's verdict and error codes. Its promise (an accepted PNG is one that sharp decodes with
 * `failOn: 'error'`) is tested against sharp over thousands of mutated files
 * (test/integration/png-check.test.ts).
 *
 * Its cost is bounded by what a well-formed PNG of its size costs: at most 1,024 chunks are walked
 * (on the event loop); the stream is inflated there only when both it and its output are at most
 * 256 KiB (else in the pool), and to at most 4 MiB, in one buffer.
 */
export async function plainPngDecodes(data: Buffer, maxRawBytes: number = MAX_RAW_BYTES): Promise<boolean> {
  const plan = readPlainPng(data, maxRawBytes);
  if (!plan) return false;
  let result: InflateResult;
  try {
    // Small images inflate on the event loop, which is cheaper than a hop to the pool and back. At
    // the SYNC_BYTES limit that holds the loop for about 0.5–2 ms (a 256 × 255 RGBA image: 0.5 ms
    // of noise, 1.6 ms of a noisy gradient; 256 KiB of empty deflate blocks: 2 ms). Larger
    // outputs, or longer streams, inflate in the pool, so that one upload cannot hold up every
    // other request.
    result =
      plan.expected <= SYNC_BYTES && plan.idat.length <= SYNC_BYTES
        ? (inflateSync(plan.idat, inflateOptions(plan.expected)) as unknown as InflateResult)
        : await inflateAsync(plan.idat, inflateOptions(plan.expected));
  } catch {
    return false;
  }
  const raw = result.buffer;
  if (raw.length !== plan.expected || result.engine.bytesWritten !== plan.idat.length) return false;
  const stride = plan.rowBytes + 1;
  for (let offset = 0; offset < raw.length; offset += stride) if (raw[offset] > 4) return false;
  return true;
}

/**
 * Inflated sizes above this go to sharp's shrinking decode, which never holds the whole image: a
 * ~4 KiB stream of zeros inflates to 4 MiB (deflate reaches about 1,000:1), so this, not the
 * upload's size, bounds the memory an upload makes the check hold.
 */
const MAX_RAW_BYTES = 4 * 1024 * 1024;
/** A stream and its output both this small inflate on the event loop. */
const SYNC_BYTES = 256 * 1024;
/** Real PNGs have a few chunks (libpng writes 8 KiB IDATs); thousands of empty ones are for sharp. */
const MAX_CHUNKS = 1024;
/** The largest zlib window: every back-reference a deflate stream can make falls inside it. */
const MAX_WINDOW = 32 * 1024;
const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Colour types with every sample value valid, and the bit depths each allows. */
const CHANNELS: Record<number, { channels: number; depths: readonly number[] }> = {
  0: { channels: 1, depths: [1, 2, 4, 8, 16] },
  2: { channels: 3, depths: [8, 16] },
  4: { channels: 2, depths: [8, 16] },
  6: { channels: 4, depths: [8, 16] },
};

/** APNG's chunks: the frames after the first are for sharp (and the inspector's frame count) to judge. */
const ANIMATION = new Set(['acTL', 'fcTL', 'fdAT']);

interface PlainPng {
  idat: Buffer;
  rowBytes: number;
  expected: number;
}

const inflateAsync = promisify(inflate) as unknown as (buffer: Buffer, options: object) => Promise<InflateResult>;
// One output buffer of the expected size (plus a byte, so that a complete stream ends in one call):
// no list of 16 KiB pieces joined into a second copy at the end.
const inflateOptions = (expected: number) => ({ maxOutputLength: expected, chunkSize: Math.max(expected + 1, 64), info: true as const });

/** The IDAT stream and its expected inflated size, or null when this is not a plain, well-formed PNG. */
function readPlainPng(data: Buffer, maxRawBytes: number): PlainPng | null {
  if (data.length < SIGNATURE.length + 12 * 3 || !data.subarray(0, 8).equals(SIGNATURE)) return null;
  let position = 8;
  let rowBytes = 0;
  let height = 0;
  const idat: Buffer[] = [];
  let idatEnded = false;
  for (let index = 0; ; index++) {
    if (index === MAX_CHUNKS || position + 12 > data.length) return null;
    const length = data.readUInt32BE(position);
    const end = position + 12 + length;
    if (length > 0x7fffffff || end > data.length) return null;
    const type = data.toString('latin1', position + 4, position + 8);
    const body = data.subarray(position + 8, position + 8 + length);
    if (crc32(data.subarray(position + 4, position + 8 + length)) !== data.readUInt32BE(position + 8 + length)) return null;
    position = end;

    if (index === 0) {
      if (type !== 'IHDR' || length !== 13) return null;
      const header = readHeader(body);
      if (!header) return null;
      ({ rowBytes, height } = header);
      continue;
    }
    if (type === 'IDAT') {
      if (idatEnded) return null;
      idat.push(body);
      continue;
    }
    if (idat.length) idatEnded = true;
    if (type === 'IEND') {
      if (length !== 0 || position !== data.length || !idat.length) return null;
      break;
    }
    // Ancillary chunks (a lowercase first letter) carry metadata a decoder may skip; libpng, under
    // sharp's failOn: 'error', skips even malformed ones (a zero gAMA, a broken iCCP). Any other
    // critical chunk (PLTE included), a name that is not four letters, or the reserved bit: sharp decides.
    if (!ancillary(type) || ANIMATION.has(type)) return null;
  }
  const expected = height * (rowBytes + 1);
  if (expected > maxRawBytes) return null;
  const stream = idat.length === 1 ? idat[0] : Buffer.concat(idat);
  // The window (CINFO, the header's high nibble; above 7 zlib refuses the stream anyway).
  if (stream.length < 2 || 2 ** ((stream[0] >> 4) + 8) < Math.min(expected, MAX_WINDOW)) return null;
  return { idat: stream, rowBytes, expected };
}

function readHeader(ihdr: Buffer): { rowBytes: number; height: number } | null {
  const width = ihdr.readUInt32BE(0);
  const height = ihdr.readUInt32BE(4);
  const [depth, colourType, compression, filter, interlace] = ihdr.subarray(8, 13);
  const kind = CHANNELS[colourType];
  if (!kind || !kind.depths.includes(depth) || compression !== 0 || filter !== 0 || interlace !== 0) return null;
  if (width === 0 || height === 0 || width > 0x7fffffff || height > 0x7fffffff) return null;
  return { rowBytes: Math.ceil((width * kind.channels * depth) / 8), height };
}

/** Four ASCII letters, the first lowercase (ancillary), the third uppercase (the reserved bit clear). */
function ancillary(type: string): boolean {
  return /^[a-z][A-Za-z][A-Z][A-Za-z]$/.test(type);
}
