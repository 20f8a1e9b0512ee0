import fc from 'fast-check';
import { createMediaIdFactory } from '@jan/mediaid';
import { collectPlaceholderIds, replacePlaceholders, scanPlaceholders } from './placeholders';

const nextId = createMediaIdFactory();

describe('placeholders', () => {
  it('finds both forms, any case of id, and ignores look-alikes', () => {
    const a = nextId();
    const b = nextId();
    const value = {
      x: [`data:image/png;${a}`, `data:image/webp;base64,${b.toUpperCase()}`],
      y: `data:image/png;${a}x`,
      z: `data:text/plain;${a}`,
      w: `data:image/png;base64,iVBOR${a}`,
    };
    expect(collectPlaceholderIds(value).sort()).toEqual([a, b].sort());
  });

  it('replaces inside strings only and shares untouched subtrees', () => {
    const a = nextId();
    const untouched = { deep: ['x', { y: 1 }] };
    const input = { keep: untouched, hit: { url: `data:image/png;${a}` } };
    const out = replacePlaceholders(input, () => 'https://signed') as typeof input;
    expect(out.hit.url).toBe('https://signed');
    expect(out.keep).toBe(untouched);
  });

  it('scans once, then replaces several placeholders in one string and leaves unknown ids as they are', () => {
    const [a, b, c] = [nextId(), nextId(), nextId()];
    const input = { messages: [{ text: `see data:image/png;${a} and data:image/jpeg;base64,${b}, then data:image/png;${c}!` }] };
    const before = JSON.stringify(input);
    const scan = scanPlaceholders(input);
    expect([...scan.ids].sort()).toEqual([a, b, c].sort());
    const out = scan.replace((id) => (id === c ? undefined : `https://u/${id.slice(-4)}`)) as typeof input;
    expect(out.messages[0]!.text).toBe(`see https://u/${a.slice(-4)} and https://u/${b.slice(-4)}, then data:image/png;${c}!`);
    expect(JSON.stringify(input)).toBe(before);
  });

  it('copies a container on a changed path once, however many of its strings change', () => {
    const [a, b] = [nextId(), nextId()];
    const input = { list: [`data:image/png;${a}`, 'plain', `data:image/png;${b}`], other: { n: 1 } };
    const out = replacePlaceholders(input, (id) => `u:${id === a ? 'a' : 'b'}`) as typeof input;
    expect(out).toEqual({ list: ['u:a', 'plain', 'u:b'], other: { n: 1 } });
    expect(out.list).not.toBe(input.list);
    expect(out.other).toBe(input.other);
    expect(input.list[0]).toBe(`data:image/png;${a}`);
  });

  it('returns the value itself when nothing is replaced, and a replaced string at the root', () => {
    const a = nextId();
    const input = { u: `data:image/png;${a}` };
    expect(replacePlaceholders(input, () => undefined)).toBe(input);
    expect(replacePlaceholders(`data:image/png;${a}`, () => 'https://x')).toBe('https://x');
  });

  it('keeps a "__proto__" key an own property', () => {
    const a = nextId();
    const input = JSON.parse(`{"__proto__": {"u": "data:image/png;${a}"}}`);
    const out = replacePlaceholders(input, () => 'u') as Record<string, unknown>;
    expect(Object.prototype.hasOwnProperty.call(out, '__proto__')).toBe(true);
    expect(JSON.stringify(out)).toBe('{"__proto__":{"u":"u"}}');
  });

  it('leaves any JSON without placeholders deep-equal and valid (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const out = replacePlaceholders(value, () => 'never');
        expect(out).toEqual(value);
        expect(JSON.parse(JSON.stringify(out))).toEqual(JSON.parse(JSON.stringify(value)));
      }),
    );
  });

  it('replaces every placeholder planted anywhere in arbitrary JSON (property)', () => {
    const id = nextId();
    const placeholder = fc.constantFrom(`data:image/png;${id}`, `data:image/jpeg;base64,${id}`);
    const withPlanted = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        fc.tuple(fc.string(), placeholder, fc.string()).map(([a, p, b]) => `${a} ${p} ${b}`),
        fc.jsonValue({ maxDepth: 1 }),
        fc.array(tie('node'), { maxLength: 4 }),
        fc.dictionary(fc.string(), tie('node'), { maxKeys: 4 }),
      ),
    })).node;
    fc.assert(
      fc.property(withPlanted, (value) => {
        const out = replacePlaceholders(value, () => 'https://x');
        expect(collectPlaceholderIds(out)).toEqual([]);
        expect(JSON.stringify(out)).not.toContain(id);
      }),
    );
  });
});
