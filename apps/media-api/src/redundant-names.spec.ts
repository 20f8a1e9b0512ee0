import { runInNewContext } from 'node:vm';

// The bundle build's pass over esbuild's keepNames wrappers (scripts/redundant-names.cjs).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { dropRedundantNames } = require('../scripts/redundant-names.cjs') as {
  dropRedundantNames(source: string): { source: string; dropped: number };
};

const HELPER = 'var __defProp = Object.defineProperty; var __name = (target, value) => __defProp(target, "name", { value, configurable: true });\n';

/** Runs `body` (which fills `out` with functions) and returns their names. */
function namesAfter(body: string): Record<string, string> {
  const out: Record<string, { name: string }> = {};
  runInNewContext(HELPER + body, { out });
  return Object.fromEntries(Object.entries(out).map(([key, fn]) => [key, fn.name]));
}

describe('dropRedundantNames', () => {
  it.each([
    ['a const', 'const handler = __name((x) => x, "handler"); out.a = handler;', 1],
    ['a let assigned later', 'let cb; cb = __name(() => 1, "cb"); out.a = cb;', 1],
    ['an object property', 'out.a = { run: __name(() => 1, "run") }.run;', 1],
    ['a quoted object property', 'out.a = { "run": __name(function () {}, "run") }["run"];', 1],
    ['a class field', 'class C { go = __name(() => 1, "go"); } out.a = new C().go;', 1],
    ['a named function expression', 'out.a = __name(function inner() {}, "inner");', 1],
    ['a declaration and its statement', 'function make() { function step() {} __name(step, "step"); return step; } out.a = make();', 1],
  ])('drops the wrapper of %s, and the function keeps its name', (_what, body, dropped) => {
    const result = dropRedundantNames(body);
    expect(result.dropped).toBe(dropped);
    expect(result.source).not.toContain('__name(');
    expect(namesAfter(result.source)).toEqual(namesAfter(body));
  });

  it.each([
    ['a binding esbuild renamed', 'const handler2 = __name((x) => x, "handler"); out.a = handler2;'],
    ['an assignment to a member', 'const o = {}; o.run = __name(() => 1, "run"); out.a = o.run;'],
    ['a computed key', 'const k = "run"; out.a = { [k]: __name(() => 1, "run") }.run;'],
    ['a function expression of another name', 'out.a = __name(function inner2() {}, "inner");'],
    ['a class', 'class Foo2 { static { __name(this, "Foo"); } } out.a = Foo2;'],
    ['a statement naming something that is not a function declared there', 'let f = () => 1; f = (() => () => 2)(); __name(f, "f"); out.a = f;'],
  ])('keeps the wrapper of %s: not a place where JavaScript surely gives that name', (_what, body) => {
    const result = dropRedundantNames(body);
    expect(result.dropped).toBe(0);
    expect(result.source).toBe(body);
    expect(namesAfter(result.source)).toEqual(namesAfter(body));
  });

  it('unwraps nested wrappers, inner and outer alike', () => {
    const body = 'const outer = __name(() => { const inner = __name(() => 1, "inner"); return inner; }, "outer"); out.a = outer; out.b = outer();';
    const result = dropRedundantNames(body);
    expect(result.dropped).toBe(2);
    expect(result.source).toBe('const outer = () => { const inner = () => 1; return inner; }; out.a = outer; out.b = outer();');
    expect(namesAfter(result.source)).toEqual({ a: 'outer', b: 'inner' });
  });
});
