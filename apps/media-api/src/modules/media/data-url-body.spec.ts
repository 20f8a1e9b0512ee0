import { Readable } from 'node:stream';
import fc from 'fast-check';
import { parseJson } from '../../http/raw-json-body';
import { parseDataUrl, type ParsedDataUrl } from './data-url';
import { parseIngestJson, takeDecodedDataUrl } from './data-url-body';

async function bytesOf(body: Buffer | Readable): Promise<Buffer> {
  if (Buffer.isBuffer(body)) return body;
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

type Outcome = { refused: string } | { value: unknown; dataUrl: { declaredMimeType?: string; bytes: number; body: Buffer } | { refused: string } | null };

async function dataUrlOutcome(parse: () => ParsedDataUrl): Promise<{ declaredMimeType?: string; bytes: number; body: Buffer } | { refused: string }> {
  try {
    const parsed = parse();
    return { declaredMimeType: parsed.declaredMimeType, bytes: parsed.bytes, body: await bytesOf(parsed.body) };
  } catch (error) {
    return { refused: `${(error as { code?: string }).code} ${(error as Error).message}` };
  }
}

/** What the body comes to: its value without the data URL, and what the data URL decodes to. */
async function outcome(body: Buffer, parse: (body: Buffer) => unknown, decoded: (value: unknown) => ParsedDataUrl | undefined): Promise<Outcome> {
  let value: unknown;
  try {
    value = parse(body);
  } catch (error) {
    return { refused: `${(error as Error).constructor.name} ${(error as Error).message}` };
  }
  const source = (value as { source?: { data_url?: unknown } } | null)?.source;
  if (!source || typeof source !== 'object' || typeof source.data_url !== 'string') return { value, dataUrl: null };
  const text = source.data_url;
  const dataUrl = await dataUrlOutcome(() => decoded(value) ?? parseDataUrl(text));
  source.data_url = '(the data URL)';
  return { value, dataUrl };
}

/** Whether parseIngestJson decodes this body's data URL itself (and hands it over). */
function decodedOf(body: Buffer): boolean {
  try {
    return takeDecodedDataUrl(parseIngestJson(body)) !== undefined;
  } catch {
    return false;
  }
}

const usual = (body: Buffer) => outcome(body, parseJson, () => undefined);
const cutOut = (body: Buffer) => outcome(body, parseIngestJson, takeDecodedDataUrl);

const PREFIXES = [
  'data:image/png;base64,',
  'data:IMAGE/PNG;base64,',
  'data:image/png;name=a.png;base64,',
  'data:;base64,',
  'data:image/png; base64 ,',
  'data:image/png,',
  'data:image/png;base64;x=1,',
  'data:image\\/png;base64,',
  'data:image/png;na\\u006de=x;base64,',
  'data:image/png;na\\u006de=x\\u003bbase64,',
  'data:image/png;name=\\u002c;base64,',
  'data:image/png;name=\\\\;base64,',
  'data:image/png;name=\u00e9;base64,',
  'data:image/png;name=\t;base64,',
  'data:image/png;name=\u0001;base64,',
  `data:image/png;name=${'x'.repeat(600)};base64,`,
];

/** Ways the base64 text can differ from strict base64, each read its own way by JSON or by the data URL. */
const PAYLOAD_EDITS: Array<(payload: string, at: number) => string> = [
  (p) => p,
  (p) => p,
  (p, at) => `${p.slice(0, at)} ${p.slice(at)}`,
  (p, at) => `${p.slice(0, at)}\\n${p.slice(at)}`,
  (p, at) => `${p.slice(0, at)}\n${p.slice(at)}`,
  (p, at) => `${p.slice(0, at)}\\u0041${p.slice(at)}`,
  (p, at) => `${p.slice(0, at)}\\/${p.slice(at)}`,
  (p, at) => `${p.slice(0, at)}%2B${p.slice(at)}`,
  (p, at) => `${p.slice(0, at)}=${p.slice(at)}`,
  (p, at) => `${p.slice(0, at)}\\"${p.slice(at)}`,
  (p, at) => `${p.slice(0, at)}\u0001${p.slice(at)}`,
  (p, at) => `${p.slice(0, at)}\u00e9${p.slice(at)}`,
  (p) => p.slice(0, -1),
  (p) => p.replace(/\+/g, '-').replace(/\//g, '_'),
];

/** Bodies around one data URL string literal `d` (with its quotes). */
const LAYOUTS: Array<(d: string) => string> = [
  (d) => `{"source":{"type":"data_url","data_url":${d}}}`,
  (d) => ` \n{ "source" : { "data_url" : ${d} , "type" : "data_url" } , "filename" : "a.png" }\n`,
  (d) => `\ufeff{"source":{"type":"data_url","data_url":${d}}}`,
  (d) => `{"filename":"data:x,AAAA","source":{"type":"data_url","data_url":${d}}}`,
  (d) => `{"filename":"say \\"data:x,AAAA\\"","source":{"type":"data_url","data_url":${d}}}`,
  (d) => `{"source":{"type":"data_url","data_url":${d},"data_url":"data:image/png;base64,AAAA"}}`,
  (d) => `{"source":{"type":"data_url","data_url":"data:image/png;base64,AAAA","data_url":${d}}}`,
  (d) => `{"source":{"type":"data_url","url":${d}}}`,
  (d) => `{"source":{"type":"data_url","data_url":[${d}]}}`,
  (d) => `{"source":{"type":"data_url","data_url":${d}},"source":{"type":"remote_url"}}`,
  (d) => `{"other":{"source":{"data_url":${d}}}}`,
  (d) => `[{"source":{"data_url":${d}}}]`,
  (d) => `{"source":{"type":"data_url","data_url":${d}},}`,
  (d) => `{"source":{"type":"data_url","data_url":${d}}}x`,
  (d) => `{"source":{"type":"data_url","data_url":${d},"__proto__":{}}}`,
  (d) => `{${d}:1,"source":{"type":"data_url"}}`,
  (d) => `{"source":{"type":"data_url","data_url":${d}}`,
];

describe('parseIngestJson', () => {
  it('comes to what JSON.parse and parseDataUrl come to, for every prefix, edit and layout above', async () => {
    // Every combination (about 4,000), each with its own bytes and place of the edit: ~6 KB of
    // base64, over the size below which the body is parsed whole.
    const seeds = fc.sample(fc.record({ bytes: fc.uint8Array({ minLength: 3_500, maxLength: 5_000 }), at: fc.double({ min: 0, max: 1, noNaN: true }) }), {
      numRuns: PREFIXES.length * PAYLOAD_EDITS.length * LAYOUTS.length,
      seed: 42,
    });
    let cutOutTimes = 0;
    let next = 0;
    for (const prefix of PREFIXES) {
      for (const edit of PAYLOAD_EDITS) {
        for (const layout of LAYOUTS) {
          const { bytes, at } = seeds[next++];
          const payload = Buffer.from(bytes).toString('base64');
          const raw = Buffer.from(layout(`"${prefix}${edit(payload, Math.floor(at * payload.length))}"`));
          const expected = await usual(raw);
          if (decodedOf(raw)) cutOutTimes++;
          expect({ prefix, edit: PAYLOAD_EDITS.indexOf(edit), layout: LAYOUTS.indexOf(layout), outcome: await cutOut(raw) }).toEqual({
            prefix,
            edit: PAYLOAD_EDITS.indexOf(edit),
            layout: LAYOUTS.indexOf(layout),
            outcome: expected,
          });
        }
      }
    }
    // The path this is about was taken, not only the usual one.
    expect(cutOutTimes).toBeGreaterThan(40);
  });

  it('decodes an ordinary data URL straight from the bytes, and hands it over once', async () => {
    const image = Buffer.alloc(48 * 1024, 7);
    const body = Buffer.from(JSON.stringify({ source: { type: 'data_url', data_url: `data:image/png;base64,${image.toString('base64')}` }, filename: 'a.png' }));
    const value = parseIngestJson(body) as { source: { data_url: string }; filename: string };
    expect(value.source.data_url).toBe('data:image/png;base64,');
    expect(value.filename).toBe('a.png');
    const decoded = takeDecodedDataUrl(value);
    expect(decoded).toMatchObject({ declaredMimeType: 'image/png', bytes: image.length });
    expect(decoded?.body).toEqual(image);
    expect(takeDecodedDataUrl(value)).toBeUndefined();
  });

  it('parses small bodies, and data URLs it cannot prove, the usual way', () => {
    const small = Buffer.from(JSON.stringify({ source: { type: 'data_url', data_url: 'data:image/png;base64,AAAA' } }));
    const value = parseIngestJson(small) as { source: { data_url: string } };
    expect(value.source.data_url).toBe('data:image/png;base64,AAAA');
    expect(takeDecodedDataUrl(value)).toBeUndefined();

    const spaced = `data:image/png;base64,${Buffer.alloc(8 * 1024, 1).toString('base64').replace(/(.{76})/g, '$1\n')}`;
    const withNewlines = parseIngestJson(Buffer.from(JSON.stringify({ source: { type: 'data_url', data_url: spaced } }))) as { source: { data_url: string } };
    expect(withNewlines.source.data_url).toBe(spaced);
    expect(takeDecodedDataUrl(withNewlines)).toBeUndefined();
  });

  it('leaves a data URL that must stream (over 1 MiB) to parseDataUrl', () => {
    const large = `data:image/png;base64,${Buffer.alloc(1024 * 1024 + 3, 2).toString('base64')}`;
    const value = parseIngestJson(Buffer.from(JSON.stringify({ source: { type: 'data_url', data_url: large } }))) as { source: { data_url: string } };
    expect(value.source.data_url).toBe(large);
    expect(takeDecodedDataUrl(value)).toBeUndefined();
  });

  it('refuses what parseJson refuses, with its errors', () => {
    const image = Buffer.alloc(8 * 1024, 3).toString('base64');
    const poisoned = Buffer.from(`{"source":{"type":"data_url","data_url":"data:image/png;base64,${image}"},"__proto__":{"admin":true}}`);
    expect(() => parseIngestJson(poisoned)).toThrow(/__proto__/);
    const broken = Buffer.from(`{"source":{"type":"data_url","data_url":"data:image/png;base64,${image}"}`);
    expect(() => parseIngestJson(broken)).toThrow(SyntaxError);
  });
});
