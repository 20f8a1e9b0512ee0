import { crc32, deflateSync } from 'node:zlib';

/**
 * A real RGB PNG of `size`×`size` whose pixels depend on `seed`, encoded with node:zlib. The CLI
 * package has no image library (and must not depend on the service's): this is all the e2e
 * tests need to seed objects the service's decoder accepts.
 */
export function pngImage(seed: number, size = 8): Buffer {
  const stride = size * 3 + 1;
  const raw = Buffer.alloc(stride * size);
  for (let y = 0; y < size; y++) {
    raw[y * stride] = 0; // filter: none
    for (let x = 0; x < size * 3; x++) raw[y * stride + 1 + x] = ((y * size * 3 + x) * 31 + seed * 7919) & 0xff;
  }
  // The pattern above repeats every 256 seeds; the seed itself in the first pixels makes every
  // seed's bytes distinct (two uploads 155 ms apart once got the same image and were deduped).
  raw.writeUInt32BE(seed >>> 0, 1);
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header[8] = 8; // bit depth
  header[9] = 2; // truecolour
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length, 0);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body) >>> 0, 0);
  return Buffer.concat([length, body, crc]);
}

export function dataUrl(bytes: Buffer, mime = 'image/png'): string {
  return `data:${mime};base64,${bytes.toString('base64')}`;
}

export function uniqueOwner(prefix = 'cli'): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
