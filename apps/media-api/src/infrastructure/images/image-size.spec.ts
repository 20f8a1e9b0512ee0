import { jpegSize, pngSize, webpSize } from './image-size';

const SIGNATURE = Buffer.from('89504e470d0a1a0a', 'hex');

function png(width: number, height: number, { length = 13, type = 'IHDR' } = {}): Buffer {
  const chunk = Buffer.alloc(8 + 13 + 4);
  chunk.writeUInt32BE(length, 0);
  chunk.write(type, 4, 'latin1');
  chunk.writeUInt32BE(width, 8);
  chunk.writeUInt32BE(height, 12);
  chunk[16] = 8;
  chunk[17] = 2;
  return Buffer.concat([SIGNATURE, chunk]);
}

/** A segment: marker, then a length that counts itself. */
function segment(marker: number, body: Buffer): Buffer {
  const head = Buffer.from([0xff, marker, 0, 0]);
  head.writeUInt16BE(body.length + 2, 2);
  return Buffer.concat([head, body]);
}

function frameHeader(marker: number, width: number, height: number): Buffer {
  const body = Buffer.alloc(6 + 3 * 3);
  body[0] = 8; // precision
  body.writeUInt16BE(height, 1);
  body.writeUInt16BE(width, 3);
  body[5] = 3; // components
  return segment(marker, body);
}

const SOI = Buffer.from([0xff, 0xd8]);
const APP0 = segment(0xe0, Buffer.from('JFIF\0\x01\x01\0\0\x01\0\x01\0\0', 'latin1'));
const DQT = segment(0xdb, Buffer.alloc(65, 1));
const DHT = segment(0xc4, Buffer.alloc(30, 2));
const SOS = segment(0xda, Buffer.alloc(10, 3));

describe('pngSize', () => {
  it('reads width and height from the IHDR chunk', () => {
    expect(pngSize(png(640, 480))).toEqual({ width: 640, height: 480 });
    expect(pngSize(png(0x7fffffff, 1))).toEqual({ width: 0x7fffffff, height: 1 });
  });

  it('gives up (libvips decides) on anything the format does not allow there', () => {
    expect(pngSize(png(0, 480))).toBeNull();
    expect(pngSize(png(640, 0))).toBeNull();
    expect(pngSize(png(0x80000000, 1))).toBeNull();
    expect(pngSize(png(640, 480, { length: 14 }))).toBeNull();
    expect(pngSize(png(640, 480, { type: 'IDAT' }))).toBeNull();
    expect(pngSize(png(640, 480).subarray(0, 30))).toBeNull();
  });
});

describe('jpegSize', () => {
  it('finds the baseline frame header after the tables', () => {
    expect(jpegSize(Buffer.concat([SOI, APP0, DQT, frameHeader(0xc0, 1024, 768), DHT, SOS]))).toEqual({ width: 1024, height: 768 });
  });

  it('reads progressive and lossless frame headers, and skips fill bytes and standalone markers', () => {
    const fill = Buffer.from([0xff, 0xff, 0xff]);
    const restart = Buffer.from([0xff, 0xd3]);
    expect(jpegSize(Buffer.concat([SOI, APP0, fill, restart, DQT, frameHeader(0xc2, 300, 200), SOS]))).toEqual({ width: 300, height: 200 });
    expect(jpegSize(Buffer.concat([SOI, frameHeader(0xc3, 7, 9)]))).toEqual({ width: 7, height: 9 });
  });

  it('does not take DHT, JPG or DAC (0xC4, 0xC8, 0xCC) for a frame header', () => {
    for (const marker of [0xc4, 0xc8, 0xcc]) {
      const impostor = frameHeader(marker, 10, 10);
      expect(jpegSize(Buffer.concat([SOI, impostor, frameHeader(0xc0, 64, 48), SOS]))).toEqual({ width: 64, height: 48 });
    }
  });

  it('gives up (libvips decides) when the header is not where it must be', () => {
    // A scan before any frame header, a second SOI, EOI, bytes that are not a marker.
    expect(jpegSize(Buffer.concat([SOI, APP0, SOS, frameHeader(0xc0, 64, 48)]))).toBeNull();
    expect(jpegSize(Buffer.concat([SOI, SOI, frameHeader(0xc0, 64, 48)]))).toBeNull();
    expect(jpegSize(Buffer.concat([SOI, Buffer.from([0xff, 0xd9]), frameHeader(0xc0, 64, 48)]))).toBeNull();
    expect(jpegSize(Buffer.concat([SOI, Buffer.from('garbage'), frameHeader(0xc0, 64, 48)]))).toBeNull();
    // Height 0: defined later by a DNL segment. A segment length below its own two bytes.
    expect(jpegSize(Buffer.concat([SOI, frameHeader(0xc0, 64, 0), SOS]))).toBeNull();
    expect(jpegSize(Buffer.concat([SOI, Buffer.from([0xff, 0xe1, 0x00, 0x01]), frameHeader(0xc0, 64, 48)]))).toBeNull();
    // Not a JPEG; the frame header beyond the bytes in hand (a large EXIF block first).
    expect(jpegSize(Buffer.concat([APP0, frameHeader(0xc0, 64, 48)]))).toBeNull();
    const exif = segment(0xe1, Buffer.alloc(5000));
    expect(jpegSize(Buffer.concat([SOI, exif, frameHeader(0xc0, 64, 48)]).subarray(0, 4096))).toBeNull();
    // Cut inside the frame header.
    expect(jpegSize(Buffer.concat([SOI, frameHeader(0xc0, 64, 48)]).subarray(0, 8))).toBeNull();
  });
});

/** RIFF/WEBP around one first chunk. */
function webp(fourcc: string, payload: Buffer): Buffer {
  const chunk = Buffer.alloc(8 + payload.length);
  chunk.write(fourcc, 0, 'latin1');
  chunk.writeUInt32LE(payload.length, 4);
  payload.copy(chunk, 8);
  const head = Buffer.alloc(12);
  head.write('RIFF', 0, 'latin1');
  head.writeUInt32LE(4 + chunk.length, 4);
  head.write('WEBP', 8, 'latin1');
  return Buffer.concat([head, chunk, Buffer.alloc(16)]);
}

function lossy(width: number, height: number, startCode = [0x9d, 0x01, 0x2a]): Buffer {
  const p = Buffer.alloc(10);
  Buffer.from(startCode).copy(p, 3);
  p.writeUInt16LE(width, 6);
  p.writeUInt16LE(height, 8);
  return webp('VP8 ', p);
}

function lossless(width: number, height: number, signature = 0x2f): Buffer {
  const p = Buffer.alloc(5);
  p[0] = signature;
  p.writeUInt32LE(((width - 1) & 0x3fff) | (((height - 1) & 0x3fff) << 14), 1);
  return webp('VP8L', p);
}

function extended(width: number, height: number, flags = 0x10): Buffer {
  const p = Buffer.alloc(10);
  p[0] = flags;
  p.writeUIntLE(width - 1, 4, 3);
  p.writeUIntLE(height - 1, 7, 3);
  return webp('VP8X', p);
}

describe('webpSize', () => {
  it('reads lossy, lossless and extended still images', () => {
    expect(webpSize(lossy(640, 480))).toEqual({ width: 640, height: 480 });
    // The two high bits of a lossy size are an upscaling hint, not part of the size.
    expect(webpSize(lossy(640 | 0xc000, 480 | 0x4000))).toEqual({ width: 640, height: 480 });
    expect(webpSize(lossless(16383, 1))).toEqual({ width: 16383, height: 1 });
    expect(webpSize(extended(16_777_216, 3))).toEqual({ width: 16_777_216, height: 3 });
  });

  it('leaves animation, unknown chunks and broken headers to libvips', () => {
    expect(webpSize(extended(64, 64, 0x02))).toBeNull();
    expect(webpSize(webp('ALPH', Buffer.alloc(10)))).toBeNull();
    expect(webpSize(lossy(640, 480, [0x9d, 0x01, 0x2b]))).toBeNull();
    expect(webpSize(lossy(0, 480))).toBeNull();
    expect(webpSize(lossless(64, 64, 0x2e))).toBeNull();
    const notWebp = lossy(64, 64);
    notWebp.write('WAVE', 8, 'latin1');
    expect(webpSize(notWebp)).toBeNull();
    expect(webpSize(lossy(64, 64).subarray(0, 29))).toBeNull();
  });
});
