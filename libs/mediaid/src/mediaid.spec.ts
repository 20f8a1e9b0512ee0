import fc from 'fast-check';
import { createMediaIdFactory, isValidMediaId, mediaIdTimestamp, newMediaId, parseMediaId } from './mediaid';

describe('mediaid', () => {
  it('makes jan_ + 26 lowercase Crockford chars that clients can match', () => {
    const id = newMediaId();
    expect(id).toMatch(/^jan_[a-z0-9]+$/);
    expect(id).toHaveLength(30);
    expect(isValidMediaId(id)).toBe(true);
  });

  it('makes 100k unique ids that sort in creation order, even within one millisecond', () => {
    const next = createMediaIdFactory();
    const ids: string[] = [];
    const frozen = Date.now();
    for (let i = 0; i < 100_000; i++) ids.push(next(i < 50_000 ? frozen : frozen + 1 + (i >> 10)));
    expect(new Set(ids).size).toBe(ids.length);
    const sorted = [...ids].sort();
    expect(sorted).toEqual(ids);
  });

  it('exposes the creation timestamp', () => {
    const at = Date.UTC(2026, 10, 27, 12, 0, 0);
    expect(mediaIdTimestamp(createMediaIdFactory()(at))).toBe(at);
  });

  it('keeps order when the clock steps back', () => {
    const next = createMediaIdFactory();
    const first = next(2_000_000);
    const second = next(1_000_000);
    expect(second > first).toBe(true);
  });

  it('draws its random part from the CSPRNG: two fresh generators at the same instant differ', () => {
    const at = 1_700_000_000_000;
    const a = createMediaIdFactory()(at);
    const b = createMediaIdFactory()(at);
    expect(a.slice(0, 14)).toEqual(b.slice(0, 14));
    expect(a.slice(14)).not.toEqual(b.slice(14));
  });

  it('parses either case, the JAN_ prefix and surrounding whitespace', () => {
    const id = newMediaId();
    expect(parseMediaId(id)).toBe(id);
    expect(parseMediaId(id.toUpperCase())).toBe(id);
    expect(parseMediaId(`  JAN_${id.slice(4)}\n`)).toBe(id);
  });

  it('rejects things that are not ids', () => {
    for (const bad of ['', 'jan_', 'jan_nonexistent123', 'img_01hqr8v9k2x3f4g5h6j7k8m9n0', 'jan_01hqr8v9k2x3f4g5h6j7k8m9nu', 'jan_81hqr8v9k2x3f4g5h6j7k8m9n0', 42, null, undefined]) {
      expect(parseMediaId(bad)).toBeNull();
      expect(isValidMediaId(bad)).toBe(false);
    }
    expect(() => mediaIdTimestamp('nope')).toThrow(TypeError);
  });

  it('round-trips through parse in any casing (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 48 - 1 }), fc.array(fc.boolean(), { minLength: 30, maxLength: 30 }), (ms, upper) => {
        const id = createMediaIdFactory()(ms);
        const mangled = [...id].map((c, i) => (upper[i] ? c.toUpperCase() : c)).join('');
        expect(parseMediaId(mangled)).toBe(id);
        expect(mediaIdTimestamp(mangled)).toBe(ms);
      }),
    );
  });

  it('never accepts arbitrary strings that do not match the canonical shape (property)', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        const parsed = parseMediaId(s);
        if (parsed !== null) expect(isValidMediaId(parsed)).toBe(true);
      }),
    );
  });
});
