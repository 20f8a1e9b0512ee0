import sharp from 'sharp';

/** A real PNG of `size`×`size` whose pixels depend on `seed`, so different seeds give different bytes. */
export async function pngImage(seed: number, size = 16): Promise<Buffer> {
  const raw = Buffer.alloc(size * size * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 31 + seed * 7919) & 0xff;
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
