import { MAX_JSON_DEPTH, foreignCharset, parseJson } from './raw-json-body';

describe('parseJson', () => {
  it.each([
    ['{"__proto__": {"admin": true}}', 'a __proto__ key'],
    ['{"a": [{"b": {"__proto__": 1}}]}', 'a deep __proto__ key'],
    ['{"\\u005f_proto__": {}}', 'an escaped __proto__ key'],
    ['{"constructor": {"prototype": {"admin": true}}}', 'constructor.prototype'],
    ['[{"x": {"constructor": {"prototype": null}}}]', 'a deep constructor.prototype'],
    ['{"a": 1,}', 'malformed JSON'],
  ])('refuses %s (%s), as secure-json-parse does', (text) => {
    expect(() => parseJson(Buffer.from(text))).toThrow(SyntaxError);
  });

  it.each([
    ['[', ']'],
    ['{"a":', '}'],
  ])('refuses a body nested deeper than %s…%s allows, before anything walks it recursively', (open, close) => {
    const nest = (depth: number) => Buffer.from(`${open.repeat(depth)}1${close.repeat(depth)}`);
    expect(parseJson(nest(MAX_JSON_DEPTH))).toBeDefined();
    expect(() => parseJson(nest(MAX_JSON_DEPTH + 1))).toThrow(/deeper/);
    expect(() => parseJson(nest(100_000))).toThrow(/deeper/);
  });

  it('accepts look-alikes that cannot poison a prototype, and skips a byte order mark', () => {
    const text = '{"constructor": "x", "c": {"constructor": {"proto": 1}}, "s": "\\"__proto__\\": 1", "prototype": {}}';
    expect(parseJson(Buffer.from(text))).toEqual(JSON.parse(text));
    expect(parseJson(Buffer.from('\ufeff{"a":1}'))).toEqual({ a: 1 });
    expect(parseJson(Buffer.from('"x"'))).toBe('x');
  });
});

describe('foreignCharset', () => {
  it.each([
    ['application/json', undefined],
    ['application/json; charset=utf-8', undefined],
    ['application/json;charset=UTF8', undefined],
    ['application/json; charset="utf-8"', undefined],
    ['application/json; charset=utf-16', 'utf-16'],
    ['application/json; Charset="ISO-8859-1"', 'ISO-8859-1'],
    ['application/json; charset=', ''],
  ])('%s → %s', (contentType, expected) => {
    expect(foreignCharset(contentType)).toBe(expected);
  });
});
