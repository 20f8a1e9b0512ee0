import fc from 'fast-check';
import { createMediaIdFactory } from '@jan/mediaid';
import { DomainError } from './errors';
import { readJsonText } from './json-text';
import { findPlaceholders, substitutePlaceholders } from './placeholders';

const nextId = createMediaIdFactory();
const utf8 = (text: string) => new TextEncoder().encode(text);
const joined = (parts: Uint8Array[]) => new TextDecoder().decode(Buffer.concat(parts));

function rejection(bytes: Uint8Array): DomainError | undefined {
  try {
    readJsonText(bytes);
    return undefined;
  } catch (error) {
    if (!(error instanceof DomainError)) throw error;
    return error;
  }
}

/** The reference the reader is checked against: a plain walk of the parsed value, strings only. */
function referenceIds(value: unknown, into = new Set<string>(), malformed: string[] = []): Set<string> {
  if (typeof value === 'string') for (const o of findPlaceholders(value, malformed)) into.add(o.id);
  else if (value !== null && typeof value === 'object') for (const child of Object.values(value)) referenceIds(child, into, malformed);
  return into;
}
function referenceReplace(value: unknown, replacement: (id: string) => string | undefined): unknown {
  if (typeof value === 'string') return substitutePlaceholders(value, findPlaceholders(value), replacement);
  if (Array.isArray(value)) return value.map((v) => referenceReplace(v, replacement));
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, referenceReplace(v, replacement)]));
  return value;
}

/** JSON text of `value` with whitespace of every allowed kind between tokens. */
const formatted = (value: unknown, indent: string) => JSON.stringify(value, null, indent).replace(/\n/g, '\r\n');

describe('readJsonText', () => {
  it('accepts what JSON.stringify writes, however indented, and parses members and values like JSON.parse (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom('', ' ', '\t', '  '), (value, indent) => {
        const text = readJsonText(utf8(formatted(value, indent)));
        expect(text.valueAt({ start: 0, end: text.bytes.length })).toEqual(JSON.parse(JSON.stringify(value)));
        if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
          expect([...text.members!.keys()].sort()).toEqual(Object.keys(value).sort());
          for (const [key, span] of text.members!) expect(text.valueAt(span)).toEqual(JSON.parse(JSON.stringify((value as Record<string, unknown>)[key])));
        } else {
          expect(text.members).toBeNull();
        }
      }),
    );
  });

  it('rejects exactly what JSON.parse rejects, for JSON texts with one character changed (property)', () => {
    const edit = fc.record({ at: fc.nat(), remove: fc.boolean(), insert: fc.constantFrom('', ',', ':', '"', '[', ']', '{', '}', '0', '-', '.', 'e', '\\', 'x', ' ', '\u0001') });
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 3 }), edit, (value, { at, remove, insert }) => {
        const original = JSON.stringify(value);
        const cut = at % (original.length + 1);
        const text = original.slice(0, cut) + insert + original.slice(remove ? cut + 1 : cut);
        let parses = true;
        try {
          JSON.parse(text);
        } catch {
          parses = false;
        }
        expect(rejection(utf8(text)) === undefined).toBe(parses);
      }),
      { numRuns: 2_000 },
    );
  });

  it.each([
    ['', 'empty'],
    ['   ', 'whitespace only'],
    ['{"a":1,}', 'trailing comma'],
    ['[1,]', 'trailing comma in an array'],
    ['{,}', 'lone comma'],
    ['{"a" 1}', 'missing colon'],
    ['{a:1}', 'unquoted key'],
    ["{'a':1}", 'single quotes'],
    ['01', 'leading zero'],
    ['1.', 'fraction without digits'],
    ['.5', 'no integer part'],
    ['+1', 'plus sign'],
    ['1e', 'exponent without digits'],
    ['-', 'lone minus'],
    ['tru', 'truncated literal'],
    ['nul', 'truncated null'],
    ['"abc', 'unterminated string'],
    ['"a\\x"', 'unknown escape'],
    ['"\\u12G4"', 'bad unicode escape'],
    ['"\\u12"', 'short unicode escape'],
    ['"a\tb"', 'raw control character in a string'],
    ['{} {}', 'two values'],
    ['[1] x', 'garbage after the value'],
    ['{"a":[1}', 'mismatched brackets'],
    [']', 'lone closing bracket'],
  ])('rejects %j (%s) with invalid_request and where', (text) => {
    const error = rejection(utf8(text));
    expect(error?.code).toBe('invalid_request');
    expect(typeof error?.details?.offset).toBe('number');
  });

  it.each([
    [[0x22, 0xc0, 0x80, 0x22], 'overlong NUL'],
    [[0x22, 0xe0, 0x80, 0xaf, 0x22], 'overlong three-byte form'],
    [[0x22, 0xed, 0xa0, 0x80, 0x22], 'UTF-16 surrogate'],
    [[0x22, 0xf4, 0x90, 0x80, 0x80, 0x22], 'above U+10FFFF'],
    [[0x22, 0xf5, 0x80, 0x80, 0x80, 0x22], 'invalid lead byte'],
    [[0x22, 0xe2, 0x82, 0x22], 'truncated sequence'],
    [[0x22, 0x80, 0x22], 'lone continuation byte'],
    [[0x5b, 0xc3, 0xa9, 0x5d], 'non-ASCII outside a string'],
  ])('rejects malformed UTF-8 (%#: %s) instead of guessing', (bytes) => {
    expect(rejection(Uint8Array.from(bytes))?.code).toBe('invalid_request');
  });

  it('accepts every kind of well-formed UTF-8 and a leading byte order mark', () => {
    const text = readJsonText(Uint8Array.from([0xef, 0xbb, 0xbf, ...utf8('{"s":"é 漢 🚀 \u{10ffff}"}')]));
    expect(text.valueAt(text.members!.get('s')!)).toBe('é 漢 🚀 \u{10ffff}');
  });

  it('indexes root members by their decoded key, the last duplicate winning as with JSON.parse', () => {
    const text = readJsonText(utf8('{"pay\\u006coad": 1, "x": {"payload": 2}, "payload" : [3] }'));
    expect([...text.members!.keys()]).toEqual(['payload', 'x']);
    expect(text.valueAt(text.members!.get('payload')!)).toEqual([3]);
    expect(readJsonText(utf8('{}')).members!.size).toBe(0);
    expect(readJsonText(utf8('[{"a":1}]')).members).toBeNull();
  });

  it('handles any depth without recursion', () => {
    const depth = 200_000;
    const text = readJsonText(utf8('['.repeat(depth) + `"data:image/png;${nextId()}"` + ']'.repeat(depth)));
    expect(text.placeholders().ids).toHaveLength(1);
  });
});

describe('JSON text placeholders', () => {
  it('swaps placeholders and leaves every other byte as it was: big numbers, 1.0, -0, escapes, spacing', () => {
    const [a, b] = [nextId(), nextId()];
    const before = `{ "n": 12345678901234567890, "f": 1.0, "z": -0, "e": 1E+2,\n  "s": "caf\\u00e9 \\/ 😀",`;
    const input = `${before} "u": "see data:image/png;${a} and data:image/webp;base64,${b.toUpperCase()}." }`;
    const scan = readJsonText(utf8(input)).placeholders();
    expect([...scan.ids].sort()).toEqual([a, b].sort());
    const out = joined(scan.replace((id) => `https://x/${id === a ? 'a' : 'b'}?s=1&t=2`));
    expect(out).toBe(`${before} "u": "see https://x/a?s=1&t=2 and https://x/b?s=1&t=2." }`);
  });

  it('finds placeholders after multi-byte characters at the right byte offsets', () => {
    const id = nextId();
    const out = joined(readJsonText(utf8(`["é 漢字 🚀 data:image/png;${id} ok"]`)).placeholders().replace(() => 'U'));
    expect(JSON.parse(out)).toEqual(['é 漢字 🚀 U ok']);
  });

  it('finds placeholders written with escapes and rewrites just that string', () => {
    const id = nextId();
    const input = `{"a":"data:image\\/png;\\u006a${id.slice(1)}\\n","keep":"x\\/y"}`;
    const scan = readJsonText(utf8(input)).placeholders();
    expect(scan.ids).toEqual([id]);
    const out = joined(scan.replace(() => 'https://u'));
    expect(JSON.parse(out)).toEqual({ a: 'https://u\n', keep: 'x/y' });
    expect(out).toContain('"keep":"x\\/y"');
  });

  it('finds placeholders next to other escapes, or spelled with \\u escapes, and skips escaped text without them', () => {
    const [a, b] = [nextId(), nextId()];
    const input = `["line 1\\nsee data:image/png;${a}\\tok", "data:image/png\\u003b${b}", "just\\ntext; \\"quoted\\""]`;
    const scan = readJsonText(utf8(input)).placeholders();
    expect(scan.ids).toEqual([a, b]);
    expect(JSON.parse(joined(scan.replace((id) => (id === a ? 'A' : 'B'))))).toEqual(['line 1\nsee A\tok', 'B', 'just\ntext; "quoted"']);
  });

  it('never touches keys, and leaves unknown ids as they are', () => {
    const [a, b] = [nextId(), nextId()];
    const input = `{"data:image/png;${a}": "data:image/png;${a}", "v": "data:image/png;${b}"}`;
    const scan = readJsonText(utf8(input)).placeholders();
    expect(scan.ids).toEqual([a, b]);
    expect(JSON.parse(joined(scan.replace((id) => (id === a ? 'A' : undefined))))).toEqual({ [`data:image/png;${a}`]: 'A', v: `data:image/png;${b}` });
  });

  it('escapes what a URL would need escaped inside a JSON string', () => {
    const id = nextId();
    const out = joined(readJsonText(utf8(`["data:image/png;${id}"]`)).placeholders().replace(() => 'a"b\\c\u2028'));
    expect(JSON.parse(out)).toEqual(['a"b\\c\u2028']);
  });

  it('looks only inside the range it is given', () => {
    const [a, b] = [nextId(), nextId()];
    const text = readJsonText(utf8(`{"payload":{"u":"data:image/png;${a}"},"other":"data:image/png;${b}"}`));
    const span = text.members!.get('payload')!;
    const scan = text.placeholders(span);
    expect(scan.ids).toEqual([a]);
    expect(joined(scan.replace(() => 'U'))).toBe('{"u":"U"}');
  });

  it('gives back any JSON without placeholders byte for byte (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom('', ' ', '\t'), (value, indent) => {
        const bytes = utf8(formatted(value, indent));
        const scan = readJsonText(bytes).placeholders();
        expect(scan.ids).toEqual([]);
        expect(Buffer.concat(scan.replace(() => 'never')).equals(bytes)).toBe(true);
      }),
    );
  });

  it('agrees with a walk of the parsed value on ids and output, for arbitrary JSON with planted placeholders (property)', () => {
    const ids = [nextId(), nextId()];
    const placeholder = fc.constantFrom(
      ...ids.flatMap((id) => [`data:image/png;${id}`, `data:image/jpeg;base64,${id.toUpperCase()}`, `data:image/webp;base64,${id}==`]),
      'data:image/png;jan_abc',
      'data:image/gif;base64,JAN_XYZ=',
    );
    const planted = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        fc.tuple(fc.string({ unit: 'binary' }), placeholder, fc.string()).map(([x, p, y]) => `${x} ${p};${y}`),
        fc.jsonValue({ maxDepth: 1 }),
        fc.array(tie('node'), { maxLength: 4 }),
        fc.dictionary(fc.string(), tie('node'), { maxKeys: 4 }),
      ),
    })).node;
    fc.assert(
      fc.property(planted, fc.constantFrom('', ' '), fc.boolean(), (value, indent, escapeSlashes) => {
        let json = formatted(value, indent);
        if (escapeSlashes) json = json.replace(/\//g, '\\/');
        const scan = readJsonText(utf8(json)).placeholders();
        const malformed: string[] = [];
        expect([...scan.ids].sort()).toEqual([...referenceIds(value, new Set(), malformed)].sort());
        expect([...scan.malformed].sort()).toEqual([...new Set(malformed)].sort());
        const replacement = (id: string) => (id === ids[0] ? `https://x/${id}` : undefined);
        expect(JSON.parse(joined(scan.replace(replacement)))).toEqual(JSON.parse(JSON.stringify(referenceReplace(value, replacement))));
      }),
      { numRuns: 500 },
    );
  });
});
