import { Readable } from 'node:stream';
import fc from 'fast-check';
import { WHOLE_DECODE_MAX_BYTES, parseDataUrl } from './data-url';

async function decode(body: Buffer | Readable): Promise<Buffer> {
  if (Buffer.isBuffer(body)) return body;
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function codeOf(input: string): Promise<string | undefined> {
  try {
    await decode(parseDataUrl(input).body);
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
}

describe('parseDataUrl', () => {
  it('decodes base64 data URLs of any size, across chunk boundaries, and knows the size up front', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 200_000 }), async (bytes) => {
        const parsed = parseDataUrl(`data:image/png;base64,${Buffer.from(bytes).toString('base64')}`);
        expect(parsed.bytes).toBe(bytes.length);
        expect(parsed.declaredMimeType).toBe('image/png');
        expect(await decode(parsed.body)).toEqual(Buffer.from(bytes));
      }),
      { numRuns: 30 },
    );
  });

  it('hands a small data URL over as one Buffer, and streams a large one', async () => {
    const small = Buffer.alloc(WHOLE_DECODE_MAX_BYTES, 1);
    const whole = parseDataUrl(`data:image/png;base64,${small.toString('base64')}`);
    expect(Buffer.isBuffer(whole.body)).toBe(true);
    expect(whole.body).toEqual(small);

    const large = Buffer.alloc(WHOLE_DECODE_MAX_BYTES + 1, 2);
    const streamed = parseDataUrl(`data:image/png;base64,${large.toString('base64')}`);
    expect(streamed.body).toBeInstanceOf(Readable);
    expect(streamed.bytes).toBe(large.length);
    expect(await decode(streamed.body)).toEqual(large);
  });

  it('refuses a small data URL that is not valid base64 before anything is staged', () => {
    expect(() => parseDataUrl('data:image/png;base64,AAAA!AAA')).toThrow(expect.objectContaining({ code: 'invalid_data_url' }));
    expect(() => parseDataUrl('data:image/png;base64,AA=AAAAA')).toThrow(expect.objectContaining({ code: 'invalid_data_url' }));
  });

  it('tolerates whitespace and parameters, and refuses non-base64 forms', async () => {
    expect(await decode(parseDataUrl('data:image/png;charset=x;base64,AAEC\nAwQF').body)).toEqual(Buffer.from([0, 1, 2, 3, 4, 5]));
    // Whitespace around the whole URL, as around its payload, is tolerated.
    expect(await decode(parseDataUrl(' \n data:image/png;base64,AAECAwQF \n').body)).toEqual(Buffer.from([0, 1, 2, 3, 4, 5]));
    expect(() => parseDataUrl('data:image/png,abc')).toThrow(expect.objectContaining({ code: 'invalid_data_url' }));
    expect(() => parseDataUrl('image/png;base64,AAAA')).toThrow(expect.objectContaining({ code: 'invalid_data_url' }));
    expect(() => parseDataUrl('data:image/png;base64,AAAAA')).toThrow(expect.objectContaining({ code: 'invalid_data_url' }));
  });

  it('refuses characters outside the alphabet and misplaced padding, even deep inside a large payload', async () => {
    const good = Buffer.alloc(300_000, 7).toString('base64');
    const streamed = Buffer.alloc(WHOLE_DECODE_MAX_BYTES + 300_000, 7).toString('base64');
    expect(await codeOf(`data:image/png;base64,${streamed}`)).toBeUndefined();
    expect(await codeOf(`data:image/png;base64,${streamed.slice(0, 1_200_000)}!${streamed.slice(1_200_001)}`)).toBe('invalid_data_url');
    expect(await codeOf(`data:image/png;base64,${streamed.slice(0, 1_300_000)}=${streamed.slice(1_300_001)}`)).toBe('invalid_data_url');
    expect(await codeOf(`data:image/png;base64,${good}`)).toBeUndefined();
    expect(await codeOf(`data:image/png;base64,${good.slice(0, 200_000)}!${good.slice(200_001)}`)).toBe('invalid_data_url');
    expect(await codeOf(`data:image/png;base64,${good.slice(0, 100_000)}=${good.slice(100_001)}`)).toBe('invalid_data_url');
    expect(await codeOf('data:image/png;base64,AA=A')).toBe('invalid_data_url');
  });
});
