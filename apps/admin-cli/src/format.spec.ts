import fc from 'fast-check';
import { formatBytes, formatDate, renderFields, renderTable, sanitize } from './format';

describe('format', () => {
  it('prints sizes in binary units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(20 * 1024 * 1024)).toBe('20.0 MiB');
    expect(formatBytes(150 * 1024 ** 3)).toBe('150 GiB');
    expect(formatBytes(null)).toBe('-');
  });

  it('prints dates to the second in UTC and passes through what is not a date', () => {
    expect(formatDate('2030-01-02T03:04:05.678Z')).toBe('2030-01-02T03:04:05Z');
    expect(formatDate(null)).toBe('-');
    expect(formatDate('soon')).toBe('soon');
  });

  it('aligns table columns, right-aligning numbers', () => {
    const text = renderTable(
      [
        { id: 'a', size: '1 B' },
        { id: 'longer', size: '10.5 KiB' },
      ],
      [
        { header: 'ID', value: (r) => r.id },
        { header: 'SIZE', value: (r) => r.size, align: 'right' },
      ],
    );
    expect(text).toBe('ID          SIZE\na            1 B\nlonger  10.5 KiB\n');
  });

  it('aligns labels of field lists', () => {
    expect(renderFields([['id', 'x'], ['storage key', 'k']])).toBe('id           x\nstorage key  k\n');
  });

  it('never lets server text carry terminal control characters', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        expect(/[\u0000-\u001f\u007f-\u009f]/.test(sanitize(text))).toBe(false);
      }),
    );
    expect(sanitize('evil\u001b[2Jname')).toBe('evil\\x1b[2Jname');
  });

  it('shows a field of the wrong type from a malformed answer as its JSON, instead of failing', () => {
    expect(sanitize(42)).toBe('42');
    expect(sanitize({ name: 'x\u001b' })).toBe('{"name":"x\\u001b"}');
    expect(sanitize(null)).toBe('-');
  });
});
