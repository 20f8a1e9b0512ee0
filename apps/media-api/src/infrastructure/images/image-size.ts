/**
 * Width and height from the first bytes of a PNG, JPEG or still WebP, for the formats whose header
 * sits at a known place: the inspector then skips a sharp header read (`metadata()`, a second pass through
 * sharp per upload). Each returns exactly what libvips reports for the same file, or null when
 * anything is unusual, and libvips reads the header and judges. Either way the full decode that
 * follows runs under libvips' own pixel cap.
 */
export interface ImageSize {
  width: number;
  height: number;
}

/** The PNG spec bounds both sides at 2^31 - 1; zero is invalid. */
const PNG_MAX_SIDE = 0x7fffffff;

/** IHDR is the first chunk, at offset 8, 13 bytes long. libvips does not animate APNG: one frame. */
export function pngSize(head: Buffer): ImageSize | null {
  if (head.length < 33 || head.readUInt32BE(8) !== 13 || head.toString('latin1', 12, 16) !== 'IHDR') return null;
  const width = head.readUInt32BE(16);
  const height = head.readUInt32BE(20);
  if (width === 0 || height === 0 || width > PNG_MAX_SIDE || height > PNG_MAX_SIDE) return null;
  return { width, height };
}

/**
 * The first frame header (SOF0–SOF15 but DHT, JPG and DAC) before any scan, walking the
 * segments from SOI within `head`; what libjpeg reports, before any EXIF orientation. A header
 * further in than `head` (a large EXIF block), a height of 0 (defined later by DNL) or anything
 * out of order gives null.
 */
export function jpegSize(head: Buffer): ImageSize | null {
  if (head.length < 4 || head[0] !== 0xff || head[1] !== 0xd8) return null;
  let i = 2;
  while (i < head.length) {
    if (head[i] !== 0xff) return null;
    // Any number of 0xFF fill bytes may precede a marker.
    while (i < head.length && head[i] === 0xff) i++;
    if (i >= head.length) return null;
    const marker = head[i++]!;
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue; // TEM, RSTn: no length
    if (marker === 0x00 || marker === 0xd8 || marker === 0xd9 || marker === 0xda) return null; // stray, SOI, EOI, SOS first
    if (i + 2 > head.length) return null;
    const length = head.readUInt16BE(i);
    if (length < 2) return null;
    if (isFrameHeader(marker)) {
      if (length < 8 || i + 7 > head.length) return null;
      const height = head.readUInt16BE(i + 3);
      const width = head.readUInt16BE(i + 5);
      return width && height ? { width, height } : null;
    }
    i += length;
  }
  return null;
}

function isFrameHeader(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

/**
 * A still WebP's size from its first chunk: `VP8 ` (lossy: the key frame's 14-bit sizes),
 * `VP8L` (lossless: 14-bit sizes minus one) or `VP8X` (extended: the 24-bit canvas, minus one).
 * An animated WebP (the VP8X animation flag) gives null: its frames are counted by libvips.
 */
export function webpSize(head: Buffer): ImageSize | null {
  if (head.length < 30 || head.toString('latin1', 0, 4) !== 'RIFF' || head.toString('latin1', 8, 12) !== 'WEBP') return null;
  const chunk = head.toString('latin1', 12, 16);
  if (chunk === 'VP8 ') {
    // Frame tag (3 bytes), then the key frame start code 9d 01 2a.
    if (head[23] !== 0x9d || head[24] !== 0x01 || head[25] !== 0x2a) return null;
    return sized(head.readUInt16LE(26) & 0x3fff, head.readUInt16LE(28) & 0x3fff);
  }
  if (chunk === 'VP8L') {
    if (head[20] !== 0x2f) return null;
    const bits = head.readUInt32LE(21);
    return sized((bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1);
  }
  if (chunk === 'VP8X') {
    const ANIMATION = 0x02;
    if (head[20]! & ANIMATION) return null;
    return sized(head.readUIntLE(24, 3) + 1, head.readUIntLE(27, 3) + 1);
  }
  return null;
}

function sized(width: number, height: number): ImageSize | null {
  return width && height ? { width, height } : null;
}
