import { cloneJSON, stringifyJSON, stringifyWithoutRecursion } from './json';
import { containsPlaceholder } from '../migration/image-references';
import { visitStrings } from '../migration/json-path';

const PLACEHOLDER = 'data:image/png;jan_01hqr8v9k2x3f4g5h6j7k8m9n0';

/** `levels` nested `{ a: [ … ] }` around `leaf`: 2 × levels JSON levels. */
function nest(leaf: unknown, levels: number): unknown {
  let node = leaf;
  for (let i = 0; i < levels; i++) node = { a: [node] };
  return node;
}

describe('stringifyWithoutRecursion', () => {
  it('writes what JSON.stringify writes', () => {
    const when = new Date('2026-01-02T03:04:05.000Z');
    const samples: unknown[] = [
      null,
      'text "quoted" \u2028 \ud800',
      -0,
      1e21,
      Number.NaN,
      true,
      [],
      {},
      [undefined, () => 1, Symbol('s'), Infinity, null],
      { a: undefined, b: () => 1, c: Symbol('s'), d: 1, e: [1, { f: 'g' }], when, '"key"': 2 },
      { nested: { toJSON: (key: string) => `key was ${key}` } },
      Object.assign(Object.create({ inherited: 1 }) as object, { own: 2 }),
      [new String('boxed'), new Number(3), new Boolean(false)],
      new Map([[1, 2]]),
    ];
    for (const sample of samples) expect(stringifyWithoutRecursion(sample)).toBe(JSON.stringify(sample));
    expect(stringifyWithoutRecursion(undefined)).toBeUndefined();
  });

  it('refuses what JSON.stringify refuses: cycles and BigInt', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic['self'] = { back: cyclic };
    expect(() => stringifyWithoutRecursion(cyclic)).toThrow(TypeError);
    expect(() => stringifyWithoutRecursion({ n: 1n })).toThrow(TypeError);
    const shared = { x: 1 };
    expect(stringifyWithoutRecursion([shared, shared])).toBe('[{"x":1},{"x":1}]');
  });
});

describe('stringifyJSON', () => {
  it('refuses cycles and BigInt as JSON.stringify does', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic['self'] = cyclic;
    expect(() => stringifyJSON(cyclic)).toThrow(TypeError);
    expect(() => stringifyJSON({ n: 1n })).toThrow(TypeError);
    expect(stringifyJSON({ a: [1, 'b'] })).toBe('{"a":[1,"b"]}');
  });

  it('writes a body nested 100 000 levels deep, where JSON.stringify overflows the stack', () => {
    const deep = nest(PLACEHOLDER, 50_000);
    expect(() => JSON.stringify(deep)).toThrow(/Maximum call stack size exceeded/);
    const text = stringifyJSON(deep)!;
    expect(text.startsWith('{"a":[{"a":[')).toBe(true);
    expect(text).toContain(`"${PLACEHOLDER}"`);
    expect(text.length).toBe(50_000 * '{"a":[]}'.length + PLACEHOLDER.length + 2);
  });
});

describe('cloneJSON', () => {
  it('copies arrays and plain objects deeply, at any depth', () => {
    const deep = nest({ leaf: [PLACEHOLDER] }, 50_000);
    expect(() => structuredClone(deep)).toThrow(/Maximum call stack size exceeded/);
    const copy = cloneJSON(deep);
    expect(copy).not.toBe(deep);
    let a = deep as { a: unknown[] };
    let b = copy as { a: unknown[] };
    for (let i = 0; i < 50_000; i++) {
      expect(b).not.toBe(a);
      a = a.a[0] as { a: unknown[] };
      b = b.a[0] as { a: unknown[] };
    }
    expect(b).toEqual({ leaf: [PLACEHOLDER] });
    expect(b).not.toBe(a);
  });

  it('copies class instances as plain objects, and shares what JSON writes through toJSON', () => {
    class Part {
      constructor(readonly url: string) {}
    }
    const when = new Date(0);
    const value = { part: new Part(PLACEHOLDER), when, boxed: new String('x') };
    const copy = cloneJSON(value);
    expect(copy.part).not.toBe(value.part);
    expect(Object.getPrototypeOf(copy.part)).toBe(Object.prototype);
    expect(copy.part).toEqual({ url: PLACEHOLDER });
    expect(copy.when).toBe(when);
    expect(copy.boxed).toBe(value.boxed);
    expect(JSON.stringify(copy)).toBe(JSON.stringify(value));
  });
});

describe('the payload walks at depth', () => {
  it('find a placeholder and visit every string 100 000 levels down without recursion', () => {
    const deep = nest({ url: PLACEHOLDER }, 50_000);
    expect(containsPlaceholder(deep)).toBe(true);
    expect(containsPlaceholder(nest({ url: 'plain' }, 50_000))).toBe(false);
    const seen: Array<{ text: string; depth: number; parents: number }> = [];
    visitStrings(deep, (text, path, parents) => seen.push({ text, depth: path.length, parents: parents.length }));
    expect(seen).toEqual([{ text: PLACEHOLDER, depth: 100_001, parents: 100_001 }]);
  });

  it('visit strings in document order with their paths, skipping cycles', () => {
    const body: Record<string, unknown> = { a: ['x', { b: 'y' }], c: 'z' };
    body['self'] = body;
    const seen: string[] = [];
    visitStrings(body, (text, path) => seen.push(`${path.join('.')}=${text}`));
    expect(seen).toEqual(['a.0=x', 'a.1.b=y', 'c=z']);
  });
});
