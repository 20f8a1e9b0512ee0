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

  it('percent-decodes the payload before its base64, small or streamed, and knows the decoded size up front', async () => {
    const bytes = Buffer.from(Array.from({ length: WHOLE_DECODE_MAX_BYTES + 5_000 }, (_, i) => (i * 131) % 256));
    for (const image of [bytes.subarray(0, 3_001), bytes]) {
      const encoded = image.toString('base64').replaceAll('+', '%2b').replaceAll('/', '%2F').replaceAll('=', '%3D');
      const parsed = parseDataUrl(`data:image/png;base64,${encoded}`);
      expect(parsed.bytes).toBe(image.length);
      expect((await decode(parsed.body)).equals(image)).toBe(true);
      expect(await codeOf(`data:image/png;base64,${encoded.slice(0, 2_000)}%2E${encoded.slice(2_000)}`)).toBe('invalid_data_url');
    }
  });

  it('refuses a character outside the alphabet or a dangling sixth bit that a trailing = would make up for, small or streamed', async () => {
    // "Ds.YspFYq=": 9 characters and one "="; the "." is skipped by Node's decoder and the "=" made the
    // expected length match. "wrv2b=": 5 characters (one too many for a quantum) and one "=".
    for (const payload of ['Ds.YspFYq=', 'Ds.\tYspFYq=', '*=', ' =', '\n=', 'wrv2b=', 'UU0NE7DJY=', 'AAAA.AA=', 'AAAAAAA.A==', 'AAA==', 'A=']) {
      expect(await codeOf(`data:image/png;base64,${payload}`)).toBe('invalid_data_url');
    }
    // Padding that completes the last quantum is fine, and so is a missing one (forgiving-base64), and "AA=" (documented).
    for (const [payload, hex] of [['AAE=', '0001'], ['AA==', '00'], ['AAE', '0001'], ['AA', '00'], ['AA=', '00'], ['AA=\n', '00']]) {
      const parsed = parseDataUrl(`data:image/png;base64,${payload}`);
      expect(parsed.bytes).toBe(hex.length / 2);
      expect((await decode(parsed.body)).toString('hex')).toBe(hex);
    }
    // The same in the last chunk of a streamed payload: 4k characters, an invalid one, and "=".
    const streamed = Buffer.alloc(WHOLE_DECODE_MAX_BYTES + 2_999, 5).toString('base64');
    expect(streamed.endsWith('=')).toBe(false);
    expect(await codeOf(`data:image/png;base64,${streamed.slice(0, -10)}.${streamed.slice(-10)}=`)).toBe('invalid_data_url');
    expect(await codeOf(`data:image/png;base64,${streamed}A=`)).toBe('invalid_data_url');
    expect(await codeOf(`data:image/png;base64,${streamed.slice(0, -10)}.\n${streamed.slice(-10)}=`)).toBe('invalid_data_url');
  });

  describe('whitespace, as WHATWG forgiving-base64 decodes it', () => {
    const ASCII_WHITESPACE = ['\t', '\n', '\f', '\r', ' '];
    /** `text` with `pieces` inserted at the given positions (each taken modulo its length + 1). */
    const sprinkle = (text: string, pieces: [number, string][]) => {
      let out = text;
      for (const [at, piece] of pieces) {
        const i = at % (out.length + 1);
        out = out.slice(0, i) + piece + out.slice(i);
      }
      return out;
    };

    it('removes TAB, LF, FF, CR and SPACE anywhere in the payload, each alone too, small or streamed', async () => {
      const small = Buffer.from([0, 1, 2, 3, 4, 5]);
      for (const ws of ASCII_WHITESPACE) {
        const parsed = parseDataUrl(`data:image/png;base64,AAEC${ws}AwQF`);
        expect(parsed.bytes).toBe(6);
        expect(await decode(parsed.body)).toEqual(small);
        expect(await decode(parseDataUrl(`data:image/png;base64,${ws}AA${ws}EC${ws}AwQF${ws}`).body)).toEqual(small);
      }
      const large = Buffer.alloc(WHOLE_DECODE_MAX_BYTES + 10_000, 9);
      const text = large.toString('base64');
      for (const ws of ASCII_WHITESPACE) {
        const parsed = parseDataUrl(`data:image/png;base64,${text.slice(0, 700_000)}${ws}${text.slice(700_000)}${ws}`);
        expect(parsed.body).toBeInstanceOf(Readable);
        expect(parsed.bytes).toBe(large.length);
        // Buffer.equals: jest's toEqual walks a 1 MB buffer byte by byte for seconds.
        expect((await decode(parsed.body)).equals(large)).toBe(true);
      }
    });

    it('decodes the same bytes whatever ASCII whitespace is sprinkled through the payload', async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.uint8Array({ maxLength: 3000 }),
          fc.array(fc.tuple(fc.nat(), fc.string({ unit: fc.constantFrom(...ASCII_WHITESPACE), minLength: 1, maxLength: 3 })), { maxLength: 20 }),
          async (bytes, pieces) => {
            const parsed = parseDataUrl(`data:image/png;base64,${sprinkle(Buffer.from(bytes).toString('base64'), pieces)}`);
            expect(parsed.bytes).toBe(bytes.length);
            expect(await decode(parsed.body)).toEqual(Buffer.from(bytes));
          },
        ),
        { numRuns: 200 },
      );
    });

    it('refuses any other whitespace (VT, NBSP, Unicode spaces), alone or next to ASCII whitespace, small or streamed', async () => {
      const others = ['\v', '\u00a0', '\u2003', '\u3000', '\ufeff', '\u0085'];
      await fc.assert(
        fc.asyncProperty(
          fc.uint8Array({ minLength: 1, maxLength: 3000 }),
          fc.nat(),
          fc.constantFrom(...others),
          fc.constantFrom('', ...ASCII_WHITESPACE),
          async (bytes, at, other, alongside) => {
            const text = sprinkle(Buffer.from(bytes).toString('base64'), [[at, other], [at + 3, alongside]]);
            expect(await codeOf(`data:image/png;base64,${text}`)).toBe('invalid_data_url');
          },
        ),
        { numRuns: 200 },
      );
      const streamed = Buffer.alloc(WHOLE_DECODE_MAX_BYTES + 10_000, 9).toString('base64');
      for (const other of others) {
        expect(await codeOf(`data:image/png;base64,${streamed.slice(0, 900_000)}${other}${streamed.slice(900_000)}`)).toBe('invalid_data_url');
        expect(await codeOf(`data:image/png;base64,${streamed.slice(0, 900_000)}${other}\n${streamed.slice(900_000)}`)).toBe('invalid_data_url');
      }
    });
  });
});
