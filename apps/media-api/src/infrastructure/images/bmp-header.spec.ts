import { readBmpHeader } from './bmp-header';

function header(fields: { dibSize?: number; width?: number; height?: number; planes?: number; bpp?: number; compression?: number; colorsUsed?: number; offset?: number }): Buffer {
  const { dibSize = 40, width = 4, height = 3, planes = 1, bpp = 24, compression = 0, colorsUsed = 0, offset = 54 } = fields;
  const buf = Buffer.alloc(14 + Math.max(dibSize, 40));
  buf.write('BM', 0, 'latin1');
  buf.writeUInt32LE(offset, 10);
  buf.writeUInt32LE(dibSize, 14);
  if (dibSize === 12) {
    buf.writeUInt16LE(width, 18);
    buf.writeUInt16LE(height, 20);
    buf.writeUInt16LE(planes, 22);
    buf.writeUInt16LE(bpp, 24);
  } else {
    buf.writeInt32LE(width, 18);
    buf.writeInt32LE(height, 22);
    buf.writeUInt16LE(planes, 26);
    buf.writeUInt16LE(bpp, 28);
    buf.writeUInt32LE(compression, 30);
    buf.writeUInt32LE(colorsUsed, 46);
  }
  return buf;
}

describe('readBmpHeader', () => {
  it('measures a bottom-up 24-bit BMP and computes where its padded rows end', () => {
    // 4 px × 24 bit = 12 bytes per row, already a multiple of 4.
    expect(readBmpHeader(header({}))).toEqual({ ok: true, width: 4, height: 3, end: 54 + 12 * 3 });
    // 5 px × 24 bit = 15 bytes, padded to 16.
    expect(readBmpHeader(header({ width: 5 }))).toEqual({ ok: true, width: 5, height: 3, end: 54 + 16 * 3 });
  });

  it('accepts top-down rows (negative height)', () => {
    expect(readBmpHeader(header({ height: -3 }))).toMatchObject({ ok: true, height: 3 });
  });

  it('reads the old OS/2 core header', () => {
    expect(readBmpHeader(header({ dibSize: 12, bpp: 24, offset: 26 }))).toMatchObject({ ok: true, width: 4, height: 3 });
  });

  it('requires the palette to fit before the pixels', () => {
    expect(readBmpHeader(header({ bpp: 8, offset: 54 + 256 * 4 }))).toMatchObject({ ok: true });
    expect(readBmpHeader(header({ bpp: 8, offset: 54 }))).toMatchObject({ ok: false, reason: 'corrupt' });
    expect(readBmpHeader(header({ bpp: 8, colorsUsed: 300, offset: 54 + 300 * 4 }))).toMatchObject({ ok: false, reason: 'corrupt' });
  });

  it.each([1, 2, 4, 5])('refuses compression %s as unsupported', (compression) => {
    expect(readBmpHeader(header({ compression, bpp: 8, offset: 2000 }))).toMatchObject({ ok: false, reason: 'unsupported' });
  });

  it('accepts bit fields at 16 and 32 bits only', () => {
    expect(readBmpHeader(header({ compression: 3, bpp: 32, offset: 66 }))).toMatchObject({ ok: true });
    expect(readBmpHeader(header({ compression: 3, bpp: 24, offset: 66 }))).toMatchObject({ ok: false, reason: 'corrupt' });
  });

  it.each([
    ['zero width', { width: 0 }],
    ['negative width', { width: -4 }],
    ['zero height', { height: 0 }],
    ['two planes', { planes: 2 }],
    ['7 bits per pixel', { bpp: 7 }],
    ['unknown header size', { dibSize: 20 }],
  ])('refuses %s as corrupt', (_name, fields) => {
    expect(readBmpHeader(header(fields))).toMatchObject({ ok: false, reason: 'corrupt' });
  });

  it('refuses a header cut short or without the BM magic', () => {
    expect(readBmpHeader(header({}).subarray(0, 20))).toMatchObject({ ok: false, reason: 'corrupt' });
    const wrong = header({});
    wrong.write('XX', 0, 'latin1');
    expect(readBmpHeader(wrong)).toMatchObject({ ok: false, reason: 'corrupt' });
  });

  it('reports huge claimed sizes for the caller to cap, without allocating anything', () => {
    expect(readBmpHeader(header({ width: 100_000, height: -100_000 }))).toMatchObject({ ok: true, width: 100_000, height: 100_000 });
  });
});
