import { randomBytes } from 'node:crypto';
import sharp from 'sharp';

/** A real PNG of random pixels: never a dedupe twin of another, however many a test makes. */
export function uniquePng(size = 8): Promise<Buffer> {
  return sharp(randomBytes(size * size * 3), { raw: { width: size, height: size, channels: 3 } }).png().toBuffer();
}
