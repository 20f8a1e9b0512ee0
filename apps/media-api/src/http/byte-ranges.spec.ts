import fc from 'fast-check';
import { noneMatch, parseRange } from './byte-ranges';

describe('parseRange', () => {
  it.each([
    ['bytes=0-9', { start: 0, end: 9 }],
    ['bytes=5-', { start: 5, end: 99 }],
    ['bytes=-10', { start: 90, end: 99 }],
    ['bytes=-1000', { start: 0, end: 99 }],
    ['bytes=90-1000', { start: 90, end: 99 }],
    ['bytes=3-3', { start: 3, end: 3 }],
    [' bytes=0-0 ', { start: 0, end: 0 }],
    ['BYTES=0-9', { start: 0, end: 9 }],
    ['Bytes=-10', { start: 90, end: 99 }],
  ])('reads %j of a 100-byte object', (header, range) => {
    expect(parseRange(header, 100)).toEqual(range);
  });

  it.each([undefined, '', 'bytes=9-3', 'bytes=99-0', 'bytes=1000-5', 'bytes=abc', 'bytes=-', 'items=0-3', 'bytes=0-1,3-4', 'bytes 0-3', 'bytes=0x1-3'])(
    'ignores %j (the whole object is sent)',
    (header) => {
      expect(parseRange(header, 100)).toBeNull();
    },
  );

  it.each(['bytes=100-', 'bytes=100-200', 'bytes=1000-', 'bytes=-0'])('finds %j unsatisfiable for a 100-byte object', (header) => {
    expect(parseRange(header, 100)).toBe('unsatisfiable');
  });

  it('ignores every reversed range, whatever the size (property)', () => {
    fc.assert(
      fc.property(fc.nat(), fc.nat(), fc.integer({ min: 1, max: 2 ** 40 }), (a, b, size) => {
        fc.pre(a !== b);
        const [first, last] = a > b ? [a, b] : [b, a];
        expect(parseRange(`bytes=${first}-${last}`, size)).toBeNull();
      }),
    );
  });

  it('answers a range inside the object, or unsatisfiable only when it starts at or past the end (property)', () => {
    fc.assert(
      fc.property(fc.nat(), fc.option(fc.nat(), { nil: undefined }), fc.integer({ min: 1, max: 2 ** 40 }), (first, span, size) => {
        const header = `bytes=${first}-${span === undefined ? '' : first + span}`;
        const range = parseRange(header, size);
        if (first >= size) expect(range).toBe('unsatisfiable');
        else expect(range).toEqual({ start: first, end: span === undefined ? size - 1 : Math.min(first + span, size - 1) });
      }),
    );
  });
});

describe('noneMatch', () => {
  const etag = '"abc"';
  it.each([[etag], ['W/"abc"'], ['*'], ['"x", "abc"']])('matches %j', (header) => {
    expect(noneMatch(header, etag)).toBe(true);
  });
  it.each([[undefined], [''], ['"x"'], ['abc']])('does not match %j', (header) => {
    expect(noneMatch(header, etag)).toBe(false);
  });
});
