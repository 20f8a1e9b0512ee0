import { Readable } from 'node:stream';
import fc from 'fast-check';
import { parseDataUrl } from './data-url';

async function decode(body: Readable): Promise<Buffer> {
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

  it('tolerates whitespace and parameters, and refuses non-base64 forms', async () => {
    expect(await decode(parseDataUrl('data:image/png;charset=x;base64,AAEC\nAwQF').body)).toEqual(Buffer.from([0, 1, 2, 3, 4, 5]));
    expect(() => parseDataUrl('data:image/png,abc')).toThrow(expect.objectContaining({ code: 'invalid_data_url' }));
    expect(() => parseDataUrl('image/png;base64,AAAA')).toThrow(expect.objectContaining({ code: 'invalid_data_url' }));
    expect(() => parseDataUrl('data:image/png;base64,AAAAA')).toThrow(expect.objectContaining({ code: 'invalid_data_url' }));
  });

  it('refuses characters outside the alphabet and misplaced padding, even deep inside a large payload', async () => {
    const good = Buffer.alloc(300_000, 7).toString('base64');
    expect(await codeOf(`data:image/png;base64,${good}`)).toBeUndefined();
    expect(await codeOf(`data:image/png;base64,${good.slice(0, 200_000)}!${good.slice(200_001)}`)).toBe('invalid_data_url');
    expect(await codeOf(`data:image/png;base64,${good.slice(0, 100_000)}=${good.slice(100_001)}`)).toBe('invalid_data_url');
    expect(await codeOf('data:image/png;base64,AA=A')).toBe('invalid_data_url');
  });
});
