import { createHash } from 'node:crypto';
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

/** Bytes that change how JSON, UTF-8, percent-decoding or base64 read what is around them. */
const AWKWARD_BYTES = [0x22, 0x5c, 0x2c, 0x25, 0x3d, 0x2d, 0x5f, 0x2b, 0x2f, 0x20, 0x0a, 0x09, 0x00, 0x7f, 0x80, 0xc3, 0xe2, 0xed, 0xff, 0x7b, 0x7d, 0x5b, 0x5d, 0x3a, 0x41];

/** One edit of a body's bytes (insert, replace, delete) near the first `"data:`, its first comma or next quote, or anywhere. */
type ByteEdit = { kind: 'insert' | 'replace' | 'delete'; where: 'open' | 'comma' | 'close' | 'anywhere'; offset: number; at: number; bytes: readonly number[] };

function applyEdit(body: Buffer, edit: ByteEdit): Buffer {
  const open = body.indexOf('"data:');
  const comma = open < 0 ? -1 : body.indexOf(',', open);
  const close = open < 0 ? -1 : body.indexOf('"', open + 1);
  const anchor = { open, comma, close, anywhere: -1 }[edit.where];
  const at = anchor < 0 ? Math.floor(edit.at * body.length) : Math.min(body.length, Math.max(0, anchor + edit.offset));
  const head = body.subarray(0, at);
  const tail = body.subarray(edit.kind === 'insert' ? at : at + 1);
  return Buffer.concat([head, edit.kind === 'delete' ? Buffer.alloc(0) : Buffer.from(edit.bytes), tail]);
}

const byteEdit: fc.Arbitrary<ByteEdit> = fc.record({
  kind: fc.constantFrom('insert' as const, 'replace' as const, 'delete' as const),
  where: fc.constantFrom('open' as const, 'comma' as const, 'close' as const, 'anywhere' as const),
  offset: fc.integer({ min: -3, max: 3 }),
  at: fc.double({ min: 0, max: 1, noNaN: true }),
  bytes: fc.oneof(fc.constantFrom(...AWKWARD_BYTES).map((b) => [b]), fc.constantFrom([0xe2, 0x82], [0xc3, 0xa9], [0xed, 0xa0, 0x80], [0x5c, 0x22], [0x5c, 0x5c], [0x22, 0x2c, 0x22], [0x25, 0x32, 0x42])),
});

/** Strings placed around the data URL: decoys that look like it, escapes that hide a quote, lone surrogates. */
const DECOYS = [
  '"x"',
  '"\\"data:image/png;base64,QUFB"',
  '"\\\\"',
  '"a\\\\\\"data:image/png;base64,QUFB"',
  '"\\ud800data:"',
  '"\u00e9\u20ac"',
  '"data:image/png;base64,QUFB"',
  '"DATA:image/png;base64,QUFB"',
  '{"data:image/png;base64,QUFB":"data:image/png;base64,QUFB"}',
  '["data:image/png;base64,QUFB",{"source":{"data_url":"data:image/png;base64,QUFB"}}]',
  '{"constructor":{"prototype":{}}}',
  '{"constructor":{"x":1}}',
];

const payloadArb = fc.record({
  bytes: fc.oneof(fc.uint8Array({ minLength: 3_000, maxLength: 4_500 }), fc.uint8Array({ maxLength: 40 })),
  urlSafe: fc.boolean(),
  // Mostly the padding it needs, so that many bodies are read straight from their bytes.
  padding: fc.oneof({ weight: 4, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constantFrom('', '=', '==', '===') }),
  cut: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 3 }) }),
});

const bodyArb = fc.record({
  prefix: fc.oneof(
    fc.constant('data:image/png;base64,'),
    fc.constantFrom(...PREFIXES),
    fc
      .tuple(fc.constantFrom('', 'image/png', 'image/svg+xml', 'x/y', 'bad'), fc.array(fc.constantFrom(';a=b', ';name=', ';q=%2C', ';n=\\"', ';=x'), { maxLength: 3 }), fc.constantFrom(';base64', '; base64', ';BASE64', '', ';base64 '))
      .map(([mime, params, b64]) => `data:${mime}${params.join('')}${b64},`),
  ),
  payload: payloadArb,
  filenameBefore: fc.boolean(),
  decoys: fc.array(fc.tuple(fc.constantFrom('filename', 'x', 'data_url', 'source', 'user_id'), fc.constantFrom(...DECOYS)), { maxLength: 3 }),
  inSource: fc.array(fc.tuple(fc.constantFrom('type', 'url', 'data_url', '__proto__', 'constructor'), fc.constantFrom(...DECOYS)), { maxLength: 2 }),
  sourceFirst: fc.boolean(),
  edits: fc.oneof(fc.constant([]), fc.array(byteEdit, { minLength: 1, maxLength: 3 })),
  bom: fc.boolean(),
});

function bodyOf(spec: typeof bodyArb extends fc.Arbitrary<infer T> ? T : never): Buffer {
  let payload = Buffer.from(spec.payload.bytes).toString('base64');
  if (spec.payload.padding !== null) payload = payload.replace(/=+$/, '') + spec.payload.padding;
  payload = payload.slice(0, Math.max(0, payload.length - spec.payload.cut));
  if (spec.payload.urlSafe) payload = payload.replace(/\+/g, '-').replace(/\//g, '_');
  const members = spec.inSource.map(([key, value]) => `"${key}":${value}`);
  const dataUrl = `"data_url":"${spec.prefix}${payload}"`;
  const source = `{"type":"data_url",${[...members, dataUrl].join(',')}}`;
  const outer = spec.decoys.map(([key, value]) => `"${key}":${value}`);
  const all = spec.sourceFirst ? [`"source":${source}`, ...outer] : [...outer, `"source":${source}`];
  let body: Buffer = Buffer.from(`${spec.bom ? '\ufeff' : ''}{${all.join(',')}}`);
  for (const edit of spec.edits) body = applyEdit(body, edit);
  return body;
}

/** An outcome with the decoded bytes as their digest: Jest compares a 1 MiB Buffer byte by byte, slowly. */
function digested(result: Outcome): unknown {
  if (!('value' in result) || !result.dataUrl || !('body' in result.dataUrl)) return result;
  return { ...result, dataUrl: { ...result.dataUrl, body: createHash('sha256').update(result.dataUrl.body).digest('hex') } };
}

describe('parseIngestJson, differential fuzzing', () => {
  it('comes to what JSON.parse and parseDataUrl come to, for bodies with decoys, escapes and stray bytes', async () => {
    let cutOutTimes = 0;
    await fc.assert(
      fc.asyncProperty(bodyArb, async (spec) => {
        const body = bodyOf(spec);
        if (decodedOf(body)) cutOutTimes++;
        expect(digested(await cutOut(body))).toEqual(digested(await usual(body)));
      }),
      { numRuns: 3_000, seed: 7 },
    );
    expect(cutOutTimes).toBeGreaterThan(80);
  });

  it('reads the boundaries as the usual path does: 4 KiB body, 512-character prefix, 1 MiB payload, padding', async () => {
    const bodies: Buffer[] = [];
    const around = (source: string, size: number) => {
      // A filename pads the body to exactly `size` bytes.
      const bare = `{"source":${source},"filename":""}`;
      return Buffer.from(`{"source":${source},"filename":"${'f'.repeat(Math.max(0, size - bare.length))}"}`);
    };
    const small = `{"type":"data_url","data_url":"data:image/png;base64,${Buffer.alloc(30, 9).toString('base64')}"}`;
    for (const size of [4095, 4096, 4097]) bodies.push(around(small, size));
    for (const headerLength of [511, 512, 513]) {
      // `data:` + `;n=` + filler + `;base64,` is headerLength characters, as parseDataUrl counts them.
      const filler = 'v'.repeat(headerLength - 'data:;n=;base64,'.length);
      bodies.push(Buffer.from(`{"source":{"type":"data_url","data_url":"data:;n=${filler};base64,${Buffer.alloc(4_000, 5).toString('base64')}"}}`));
    }
    const mib = 1024 * 1024;
    for (const size of [mib - 1, mib, mib + 1]) {
      bodies.push(Buffer.from(`{"source":{"type":"data_url","data_url":"data:image/png;base64,${Buffer.alloc(size, 1).toString('base64')}"}}`));
    }
    // 1 MiB by its length, less by its padding; and over 1 MiB only by a padding that is not one.
    const exact = Buffer.alloc(mib, 4).toString('base64');
    bodies.push(Buffer.from(`{"source":{"type":"data_url","data_url":"data:image/png;base64,${exact.replace(/=+$/, '')}A="}}`));
    bodies.push(Buffer.from(`{"source":{"type":"data_url","data_url":"data:image/png;base64,${exact.replace(/=+$/, '')}AAA"}}`));
    for (const tail of ['', 'A', 'AA', 'AAA', 'A=', 'AA=', 'AA==', 'AAA=', 'A==', '=', '==', 'AA=A', 'A===']) {
      bodies.push(Buffer.from(`{"source":{"type":"data_url","data_url":"data:image/png;base64,${Buffer.alloc(4_200, 6).toString('base64')}${tail}"}}`));
    }
    // Nesting: 64 levels in all is allowed, 65 is not; the data URL is read out of both.
    for (const depth of [62, 63, 64]) {
      bodies.push(Buffer.from(`{"x":${'['.repeat(depth)}${']'.repeat(depth)},"source":{"type":"data_url","data_url":"data:image/png;base64,${Buffer.alloc(4_000, 7).toString('base64')}"}}`));
    }
    let cutOutTimes = 0;
    for (const body of bodies) {
      if (decodedOf(body)) cutOutTimes++;
      const [expected, actual] = [digested(await usual(body)), digested(await cutOut(body))];
      expect({ head: body.subarray(0, 80).toString(), outcome: actual }).toEqual({ head: body.subarray(0, 80).toString(), outcome: expected });
    }
    expect(cutOutTimes).toBeGreaterThan(10);
  });

  it('never hands over one decoded data URL for another parsed body', () => {
    const image = Buffer.alloc(6 * 1024, 8).toString('base64');
    const body = Buffer.from(`{"source":{"type":"data_url","data_url":"data:image/png;base64,${image}"}}`);
    const [first, second] = [parseIngestJson(body), parseIngestJson(body)];
    expect(first).not.toBe(second);
    expect(takeDecodedDataUrl(first)).toBeDefined();
    expect(takeDecodedDataUrl(first)).toBeUndefined();
    expect(takeDecodedDataUrl(second)).toBeDefined();
    expect(takeDecodedDataUrl((second as { source: object }).source)).toBeUndefined();
  });
});
