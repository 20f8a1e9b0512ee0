import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { formatBytes, formatDate, renderFields, renderTable, sanitize, shellCommand, shellQuote } from './format';

/** What `shell` makes of `words`, pasted in: the arguments printf receives. */
function throughShell(shell: string, words: readonly string[]): string[] {
  const out = execFileSync(shell, ['-c', `printf '%s\\0' ${words.join(' ')}`], { env: { PATH: process.env.PATH ?? '', HOME: '/nonexistent' } });
  return out.toString('utf8').split('\0').slice(0, -1);
}

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

  it('quotes shell words only where a shell would change them', () => {
    expect(shellQuote('user-42')).toBe('user-42');
    expect(shellQuote('jan_01hqr8v9k2x3f4g5h6j7k8m9n0')).toBe('jan_01hqr8v9k2x3f4g5h6j7k8m9n0');
    expect(shellQuote('http://127.0.0.1:8285/media')).toBe('http://127.0.0.1:8285/media');
    expect(shellQuote('a b')).toBe("'a b'");
    expect(shellQuote("o'brien")).toBe("'o'\\''brien'");
    expect(shellQuote('$(id);`id`|&*?~!#')).toBe("'$(id);`id`|&*?~!#'");
    expect(shellQuote('=ls')).toBe("'=ls'");
    expect(shellQuote('')).toBe("''");
    expect(shellQuote('evil\u001b[2J')).toBe("'evil'$'\\x1b''[2J'");
    expect(shellCommand(['jan', 'media', 'ls', '--owner', 'a b'])).toBe("jan media ls --owner 'a b'");
  });

  it('quotes any text so that bash gives it back exactly, and never prints a control character', () => {
    const texts = fc.sample(fc.string({ unit: 'binary', maxLength: 40 }).filter((text) => !text.includes('\u0000')), 300);
    texts.push("'", "''", "a'b'c", '\\', '\n', '\u0085', '$HOME', '~', '!!', '-x', '--owner', ' ');
    const words = texts.map(shellQuote);
    for (const word of words) expect(/[\u0000-\u001f\u007f-\u009f]/.test(word)).toBe(false);
    expect(throughShell('bash', words)).toEqual(texts);
  });

  it('quotes text without control characters so that any POSIX sh (dash) gives it back exactly', () => {
    const texts = fc.sample(fc.string({ unit: 'binary', maxLength: 40 }).filter((text) => !/[\u0000-\u001f\u007f-\u009f]/.test(text)), 300);
    texts.push("'", "a'b'c", '\\', '$HOME', '~', '-x', '=x', ' ');
    expect(throughShell('sh', texts.map(shellQuote))).toEqual(texts);
  });
});
