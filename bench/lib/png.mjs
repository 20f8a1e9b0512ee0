import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

// sharp is a dependency of the app, not of the workspace root: resolve it from there.
const requireFromApp = createRequire(fileURLToPath(new URL('../../apps/media-api/package.json', import.meta.url)));
const sharp = requireFromApp('sharp');

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(buffer, start = 0, end = buffer.length) {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ buffer[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A real PNG of random pixels: incompressible, so its size tracks width × height × 3. */
export async function noisePng(width, height, options = {}) {
  const pixels = randomBytes(width * height * 3);
  return sharp(pixels, { raw: { width, height, channels: 3 } })
    .png({ compressionLevel: options.compressionLevel ?? 6 })
    .toBuffer();
}

/** A solid-colour PNG: small, distinct per colour. */
export async function solidPng(width, height, rgb) {
  return sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } }).png().toBuffer();
}

/**
 * Inserts a tEXt chunk (keyword `bench`, then `digits` counter digits, then 'x' padding) right
 * before IEND so that the file is exactly `totalBytes` long. Returns a stamper that writes a new
 * counter into the chunk and fixes its CRC, so every stamped buffer is a distinct, valid PNG.
 */
export function stampablePng(png, totalBytes, digits = 16) {
  const iend = png.length - 12;
  if (png.toString('latin1', iend + 4, iend + 8) !== 'IEND') throw new Error('PNG does not end with IEND');
  const keyword = Buffer.from('bench\0', 'latin1');
  const overhead = 12;
  const dataLength = totalBytes - png.length - overhead;
  if (dataLength < keyword.length + digits) throw new Error(`base PNG (${png.length} bytes) leaves no room for a ${totalBytes}-byte file`);
  const out = Buffer.alloc(totalBytes);
  png.copy(out, 0, 0, iend);
  const chunk = iend;
  out.writeUInt32BE(dataLength, chunk);
  out.write('tEXt', chunk + 4, 'latin1');
  keyword.copy(out, chunk + 8);
  const counterAt = chunk + 8 + keyword.length;
  out.fill('x', counterAt + digits, chunk + 8 + dataLength, 'latin1');
  png.copy(out, chunk + 8 + dataLength + 4, iend);
  const stamp = (counter) => {
    out.write(String(counter).padStart(digits, '0').slice(-digits), counterAt, 'latin1');
    out.writeUInt32BE(crc32(out, chunk + 4, chunk + 8 + dataLength), chunk + 8 + dataLength);
    return out;
  };
  stamp(0);
  return stamp;
}
