/**
 * BMP is the one allowed type sharp cannot decode, so it is checked here instead: only the
 * uncompressed layouts (BI_RGB, BI_BITFIELDS, BI_ALPHABITFIELDS), whose pixel array has a size
 * fixed by the header. Once that array, the palette and any embedded ICC profile fit inside the
 * file (the caller compares `end` with the file size after the size caps), every byte is a valid
 * pixel — so the arithmetic is the full decode check.
 */
export type BmpVerdict =
  | { ok: true; width: number; height: number; end: number }
  | { ok: false; reason: 'unsupported' | 'corrupt'; message: string };

const BI_RGB = 0;
const BI_BITFIELDS = 3;
const BI_ALPHABITFIELDS = 6;
const PROFILE_EMBEDDED = 0x4d424544; // 'MBED'

/** Parses and checks the header; `end` is where the pixels (or an embedded profile) stop. */
export function readBmpHeader(head: Buffer): BmpVerdict {
  const corrupt = (message: string): BmpVerdict => ({ ok: false, reason: 'corrupt', message });
  if (head.length < 26 || head.toString('latin1', 0, 2) !== 'BM') return corrupt('BMP header is truncated');
  const pixelOffset = head.readUInt32LE(10);
  const dibSize = head.readUInt32LE(14);
  let width: number;
  let height: number;
  let planes: number;
  let bpp: number;
  let compression = BI_RGB;
  let colorsUsed = 0;
  let paletteEntrySize = 4;
  let profileEnd = 0;

  if (dibSize === 12) {
    width = head.readUInt16LE(18);
    height = head.readUInt16LE(20);
    planes = head.readUInt16LE(22);
    bpp = head.readUInt16LE(24);
    paletteEntrySize = 3;
  } else if (dibSize >= 40 && dibSize <= 124) {
    if (head.length < 14 + dibSize) return corrupt('BMP header is truncated');
    width = head.readInt32LE(18);
    height = head.readInt32LE(22);
    planes = head.readUInt16LE(26);
    bpp = head.readUInt16LE(28);
    compression = head.readUInt32LE(30);
    colorsUsed = head.readUInt32LE(46);
    if (dibSize === 124 && head.readUInt32LE(14 + 56) === PROFILE_EMBEDDED) {
      profileEnd = 14 + head.readUInt32LE(14 + 112) + head.readUInt32LE(14 + 116);
    }
  } else {
    return corrupt(`unknown BMP header size ${dibSize}`);
  }

  if (compression !== BI_RGB && compression !== BI_BITFIELDS && compression !== BI_ALPHABITFIELDS) {
    return { ok: false, reason: 'unsupported', message: 'compressed BMP files are not accepted' };
  }
  if (planes !== 1 || ![1, 4, 8, 16, 24, 32].includes(bpp)) return corrupt('BMP header is invalid');
  if (compression !== BI_RGB && bpp !== 16 && bpp !== 32) return corrupt('BMP bit fields need 16 or 32 bits per pixel');
  const rows = Math.abs(height);
  if (width <= 0 || rows === 0) return corrupt('BMP has no pixels');

  const masks = dibSize === 40 && compression === BI_BITFIELDS ? 12 : dibSize === 40 && compression === BI_ALPHABITFIELDS ? 16 : 0;
  const paletteEntries = bpp <= 8 ? colorsUsed || 2 ** bpp : colorsUsed;
  if (bpp <= 8 && paletteEntries > 2 ** bpp) return corrupt('BMP palette is larger than its bit depth allows');
  if (14 + dibSize + masks + paletteEntries * paletteEntrySize > pixelOffset) return corrupt('BMP palette overlaps its pixels');

  const stride = Math.floor((bpp * width + 31) / 32) * 4;
  const pixelEnd = pixelOffset + stride * rows;
  return { ok: true, width, height: rows, end: Math.max(pixelEnd, profileEnd) };
}
