import { open } from 'node:fs/promises';
import type { AllowedMimeType, StagedUpload } from '@jan/domain';

/**
 * Tells apart an image from a file that is also something else (HTML, SVG, script, PDF, PHP)
 * wearing an image's magic bytes. Browsers and tools sniff the start and end of a file, so active
 * content there is refused; GIF, PNG and WebP have an unambiguous end, so bytes after it are
 * refused too (the classic GIF/JS polyglot hides its script after the GIF trailer). JPEG is left
 * out of the trailing check: phones append legitimate data (motion photos) after EOI.
 *
 * The walk also finds files cut off inside the image (`truncated`), which a decoder does not always
 * notice: a JPEG decoded through a shrink stops before its last, partial row of blocks, so a baseline
 * JPEG cut off there decodes without complaint unless its missing EOI is looked for.
 */
export type PolyglotFinding = 'active_content' | 'trailing_data' | null;

// Patterns of five or more bytes only: an 8 KiB window of compressed pixels must not trip them by chance.
const ACTIVE_CONTENT = /<\s*(?:script|html|head|body|iframe|svg|object|embed|meta|link|style|img|!doctype|\?php)|%PDF-|javascript:|\beval\s*\(|\balert\s*\(|\bdocument\.|\bwindow\./i;
const EDGE_BYTES = 4096;

export interface StructureFindings {
  polyglot: PolyglotFinding;
  /** The container stops in the middle of a block: some decoders (GIF) quietly show what they got. */
  truncated: boolean;
}

export async function checkStructure(upload: StagedUpload, mime: AllowedMimeType): Promise<StructureFindings> {
  const { bytes, head } = upload;
  const file: ByteReader = upload.buffer ? new BufferReader(upload.buffer) : await open(upload.path!, 'r');
  try {
    const tail = Buffer.alloc(Math.min(EDGE_BYTES, bytes));
    await file.read(tail, 0, tail.length, bytes - tail.length);
    if (ACTIVE_CONTENT.test(head.toString('latin1')) || ACTIVE_CONTENT.test(tail.toString('latin1'))) {
      return { polyglot: 'active_content', truncated: false };
    }
    const end = await imageEnd(file, bytes, mime);
    if (end === TRUNCATED) return { polyglot: null, truncated: true };
    return { polyglot: end !== null && end < bytes ? 'trailing_data' : null, truncated: false };
  } finally {
    await file.close();
  }
}

const TRUNCATED = -1;

/**
 * Mostly printable ASCII after the magic: a text file with an image signature glued on. Only
 * asked about files that fail to decode — a JPEG that opens with an XMP packet is text-heavy too.
 */
export function looksLikeText(head: Buffer): boolean {
  const sample = head.subarray(6, 518);
  if (sample.length < 24) return false;
  let printable = 0;
  for (const byte of sample) if (byte === 9 || byte === 10 || byte === 13 || (byte >= 0x20 && byte < 0x7f)) printable++;
  return printable / sample.length >= 0.95;
}

/**
 * Where the image structure ends; TRUNCATED when the file stops inside a block; null when it is
 * not known or the structure is odd in a way the decoder should judge.
 */
async function imageEnd(file: ByteReader, bytes: number, mime: AllowedMimeType): Promise<number | null> {
  const cursor = new Cursor(file, bytes);
  switch (mime) {
    case 'image/png':
      return cursor.walk(pngEnd);
    case 'image/gif':
      return cursor.walk(gifEnd);
    case 'image/webp':
      return webpEnd(file);
    case 'image/jpeg': {
      const scan = await cursor.walk(jpegScan);
      if (scan === null) return null;
      return (await occursAfter(file, bytes, scan, JPEG_EOI)) ? null : TRUNCATED;
    }
    default:
      return null;
  }
}

const PNG_IEND = 0x49454e44;

function* pngEnd(cursor: Cursor): Walk {
  cursor.skip(8);
  for (;;) {
    if (cursor.lacks(8)) yield 8;
    const header = cursor.read(8);
    if (header < 0) return TRUNCATED;
    const length = cursor.window.readUInt32BE(header);
    const type = cursor.window.readUInt32BE(header + 4);
    if (!cursor.skip(length + 4)) return TRUNCATED;
    if (type === PNG_IEND) return cursor.position;
  }
}

function* gifEnd(cursor: Cursor): Walk {
  if (cursor.lacks(13)) yield 13;
  const screen = cursor.read(13);
  if (screen < 0) return TRUNCATED;
  const flags = cursor.window[screen + 10]!;
  if (flags & 0x80 && !cursor.skip(3 * 2 ** ((flags & 7) + 1))) return TRUNCATED;
  for (;;) {
    if (cursor.lacks(1)) yield 1;
    const introducer = cursor.byte();
    // Some encoders leave out the trailer; ending between blocks is tolerated.
    if (introducer < 0) return null;
    if (introducer === 0x3b) return cursor.position;
    if (introducer === 0x21) {
      if (!cursor.skip(1)) return TRUNCATED;
    } else if (introducer === 0x2c) {
      if (cursor.lacks(9)) yield 9;
      const descriptor = cursor.read(9);
      if (descriptor < 0) return TRUNCATED;
      const local = cursor.window[descriptor + 8]!;
      if (local & 0x80 && !cursor.skip(3 * 2 ** ((local & 7) + 1))) return TRUNCATED;
      if (!cursor.skip(1)) return TRUNCATED;
    } else {
      return null;
    }
    // The block's data: sub-blocks, each led by its size, up to an empty one.
    for (;;) {
      if (cursor.lacks(1)) yield 1;
      const size = cursor.byte();
      if (size < 0) return TRUNCATED;
      if (size === 0) break;
      if (!cursor.skip(size)) return TRUNCATED;
    }
  }
}

/**
 * Where the first scan's data starts, or null when the markers cannot be walked (left to the
 * decoder). The markers are walked by their lengths, so an EOI inside an earlier segment (an EXIF
 * thumbnail's) does not count; after the scan starts, `FF D9` can only be an EOI, as scan data
 * stuffs every `FF` it holds. The image is TRUNCATED when no EOI follows; bytes after it are allowed.
 */
function* jpegScan(cursor: Cursor): Walk {
  if (!cursor.skip(2)) return null;
  for (;;) {
    if (cursor.lacks(1)) yield 1;
    if (cursor.byte() !== 0xff) return null;
    let marker: number;
    do {
      if (cursor.lacks(1)) yield 1;
      marker = cursor.byte();
      if (marker < 0) return null;
    } while (marker === 0xff);
    // EOI before any scan, or a standalone marker (TEM, RSTn).
    if (marker === 0xd9) return null;
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue;
    if (cursor.lacks(2)) yield 2;
    const at = cursor.read(2);
    const length = at < 0 ? -1 : cursor.window.readUInt16BE(at);
    if (length < 2 || !cursor.skip(length - 2)) return null;
    if (marker === 0xda) return cursor.position;
  }
}

const JPEG_EOI = Buffer.from([0xff, 0xd9]);

/** Whether `needle` occurs at or after `from`, searched from the end backwards (where a JPEG's EOI is). */
async function occursAfter(file: ByteReader, bytes: number, from: number, needle: Buffer): Promise<boolean> {
  const window = Buffer.alloc(64 * 1024);
  let end = bytes;
  while (end - from >= needle.length) {
    const start = Math.max(from, end - window.length);
    const { bytesRead } = await file.read(window, 0, end - start, start);
    if (window.subarray(0, bytesRead).lastIndexOf(needle) >= 0) return true;
    // Windows overlap by one byte less than the needle, so one split across two is still found.
    end = start + needle.length - 1;
    if (start === from) break;
  }
  return false;
}

async function webpEnd(file: ByteReader): Promise<number | null> {
  const header = Buffer.alloc(12);
  const { bytesRead } = await file.read(header, 0, 12, 0);
  if (bytesRead < 12 || header.toString('latin1', 0, 4) !== 'RIFF') return null;
  const size = header.readUInt32LE(4);
  return 8 + size + (size % 2);
}

/** Positional reads: a file handle, or the bytes of an upload held in memory. */
interface ByteReader {
  read(target: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  close(): Promise<void>;
}

class BufferReader implements ByteReader {
  constructor(readonly bytes: Buffer) {}

  async read(target: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    return { bytesRead: this.bytes.copy(target, offset, position, Math.min(position + length, this.bytes.length)) };
  }

  async close(): Promise<void> {}
}

/**
 * A walk through a container: synchronous, reading through a Cursor; when the cursor's window lacks
 * the bytes it needs next, it yields their count and is resumed once the window holds them. It
 * returns where the image ends (or TRUNCATED, or null).
 */
type Walk = Generator<number, number | null, void>;

const WINDOW_BYTES = 64 * 1024;

/**
 * Sequential reads through a 64 KiB window of the file, so walking a large file stays cheap and
 * bounded; an upload held in memory is one window over all of it. Reads and skips answer at once:
 * a walk waits only when the window is refilled, never per block, so its cost follows the bytes.
 */
class Cursor {
  position = 0;
  window: Buffer;
  private windowStart = 0;

  constructor(
    private readonly file: ByteReader,
    private readonly size: number,
  ) {
    this.window = file instanceof BufferReader ? file.bytes : Buffer.alloc(0);
  }

  async walk(walker: (cursor: Cursor) => Walk): Promise<number | null> {
    const walk = walker(this);
    for (let step = walk.next(); ; step = walk.next()) {
      if (step.done) return step.value;
      await this.fill(step.value);
    }
  }

  /** Whether the file holds the next `length` bytes but the window does not (yet). */
  lacks(length: number): boolean {
    const end = this.position + length;
    return end <= this.size && end > this.windowStart + this.window.length;
  }

  /** Where the next `length` bytes sit in the window, moving past them; -1 when the file ends first. */
  read(length: number): number {
    if (this.position + length > this.size) return -1;
    const at = this.position - this.windowStart;
    this.position += length;
    return at;
  }

  /** The next byte, or -1 at the end of the file. */
  byte(): number {
    const at = this.read(1);
    return at < 0 ? -1 : this.window[at]!;
  }

  skip(length: number): boolean {
    if (this.position + length > this.size) return false;
    this.position += length;
    return true;
  }

  private async fill(length: number): Promise<void> {
    const chunk = Buffer.alloc(Math.max(length, WINDOW_BYTES));
    const { bytesRead } = await this.file.read(chunk, 0, chunk.length, this.position);
    if (bytesRead < length) throw new Error(`The upload is shorter than its recorded ${this.size} bytes`);
    this.window = chunk.subarray(0, bytesRead);
    this.windowStart = this.position;
  }
}
