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
  switch (mime) {
    case 'image/png':
      return pngEnd(new FileCursor(file, bytes));
    case 'image/gif':
      return gifEnd(new FileCursor(file, bytes));
    case 'image/webp':
      return webpEnd(file);
    case 'image/jpeg':
      return jpegEnd(new FileCursor(file, bytes), file, bytes);
    default:
      return null;
  }
}

async function pngEnd(cursor: FileCursor): Promise<number | null> {
  await cursor.skip(8);
  for (;;) {
    const header = await cursor.read(8);
    if (!header) return TRUNCATED;
    const length = header.readUInt32BE(0);
    const type = header.toString('latin1', 4, 8);
    if (!(await cursor.skip(length + 4))) return TRUNCATED;
    if (type === 'IEND') return cursor.position;
  }
}

async function gifEnd(cursor: FileCursor): Promise<number | null> {
  const screen = await cursor.read(13);
  if (!screen) return TRUNCATED;
  const flags = screen[10];
  if (flags & 0x80 && !(await cursor.skip(3 * 2 ** ((flags & 7) + 1)))) return TRUNCATED;
  for (;;) {
    const introducer = await cursor.read(1);
    // Some encoders leave out the trailer; ending between blocks is tolerated.
    if (!introducer) return null;
    if (introducer[0] === 0x3b) return cursor.position;
    if (introducer[0] === 0x21) {
      if (!(await cursor.skip(1)) || !(await skipSubBlocks(cursor))) return TRUNCATED;
    } else if (introducer[0] === 0x2c) {
      const descriptor = await cursor.read(9);
      if (!descriptor) return TRUNCATED;
      const local = descriptor[8];
      if (local & 0x80 && !(await cursor.skip(3 * 2 ** ((local & 7) + 1)))) return TRUNCATED;
      if (!(await cursor.skip(1)) || !(await skipSubBlocks(cursor))) return TRUNCATED;
    } else {
      return null;
    }
  }
}

async function skipSubBlocks(cursor: FileCursor): Promise<boolean> {
  for (;;) {
    const size = await cursor.read(1);
    if (!size) return false;
    if (size[0] === 0) return true;
    if (!(await cursor.skip(size[0]))) return false;
  }
}

/**
 * TRUNCATED when no EOI follows the first scan, else null (bytes after EOI are allowed). The markers
 * are walked to the first SOS by their lengths, so an EOI inside an earlier segment (an EXIF
 * thumbnail's) does not count; after it, `FF D9` can only be an EOI, as scan data stuffs every
 * `FF` it holds. A structure the walk cannot follow is left to the decoder.
 */
async function jpegEnd(cursor: FileCursor, file: ByteReader, bytes: number): Promise<number | null> {
  if (!(await cursor.skip(2))) return null;
  for (;;) {
    const prefix = await cursor.read(1);
    if (!prefix || prefix[0] !== 0xff) return null;
    let marker: number;
    do {
      const next = await cursor.read(1);
      if (!next) return null;
      marker = next[0]!;
    } while (marker === 0xff);
    // EOI before any scan, or a standalone marker (TEM, RSTn).
    if (marker === 0xd9) return null;
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue;
    const length = await cursor.read(2);
    if (!length || length.readUInt16BE(0) < 2 || !(await cursor.skip(length.readUInt16BE(0) - 2))) return null;
    if (marker === 0xda) break;
  }
  return (await occursAfter(file, bytes, cursor.position, JPEG_EOI)) ? null : TRUNCATED;
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
  constructor(private readonly bytes: Buffer) {}

  async read(target: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    return { bytesRead: this.bytes.copy(target, offset, position, Math.min(position + length, this.bytes.length)) };
  }

  async close(): Promise<void> {}
}

/** Sequential reads through a 64 KiB window, so walking a large file stays cheap and bounded. */
class FileCursor {
  position = 0;
  private window = Buffer.alloc(0);
  private windowStart = 0;

  constructor(
    private readonly file: ByteReader,
    private readonly size: number,
  ) {}

  async read(length: number): Promise<Buffer | null> {
    if (this.position + length > this.size) return null;
    const offset = this.position - this.windowStart;
    if (offset < 0 || offset + length > this.window.length) {
      const chunk = Buffer.alloc(Math.max(length, 64 * 1024));
      const { bytesRead } = await this.file.read(chunk, 0, chunk.length, this.position);
      this.window = chunk.subarray(0, bytesRead);
      this.windowStart = this.position;
    }
    const start = this.position - this.windowStart;
    this.position += length;
    return this.window.subarray(start, start + length);
  }

  async skip(length: number): Promise<boolean> {
    if (this.position + length > this.size) return false;
    this.position += length;
    return true;
  }
}
