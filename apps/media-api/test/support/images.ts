import zlib from 'node:zlib';
import sharp from 'sharp';

/** A real PNG of `size`×`size` whose pixels depend on `seed`, so different seeds give different bytes. */
export async function pngImage(seed: number, size = 16): Promise<Buffer> {
  const raw = Buffer.alloc(size * size * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 31 + seed * 7919) & 0xff;
  // The pattern repeats every 256 seeds: the seed itself in the first pixels keeps seeds apart.
  raw.writeUInt32BE(seed >>> 0, 0);
  return sharp(raw, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
}

export async function jpegImage(seed: number, size = 16): Promise<Buffer> {
  const raw = Buffer.alloc(size * size * 3, seed & 0xff);
  return sharp(raw, { raw: { width: size, height: size, channels: 3 } }).jpeg().toBuffer();
}

export function dataUrl(bytes: Buffer, mime = 'image/png'): string {
  return `data:${mime};base64,${bytes.toString('base64')}`;
}

export function uniqueUser(prefix = 'user'): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** A PNG of random pixels: it does not compress, so its size is about size×size×3 bytes. */
export async function noisyPng(size: number): Promise<Buffer> {
  const { randomBytes } = await import('node:crypto');
  return sharp(randomBytes(size * size * 3), { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
}

/** The EICAR anti-virus test string: harmless text that every scanner reports as a virus. */
export const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';

/** A valid PNG with a `tEXt` chunk holding `text`, inserted right after IHDR. */
export function withTextChunk(png: Buffer, text: string, keyword = 'Comment'): Buffer {
  const data = Buffer.concat([Buffer.from(keyword, 'latin1'), Buffer.from([0]), Buffer.from(text, 'latin1')]);
  const type = Buffer.from('tEXt', 'latin1');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(zlib.crc32(Buffer.concat([type, data])));
  const afterIhdr = 8 + 4 + 4 + 13 + 4;
  return Buffer.concat([png.subarray(0, afterIhdr), length, type, data, crc, png.subarray(afterIhdr)]);
}
