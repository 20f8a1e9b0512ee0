/** Rendering for humans. `--json` output never goes through here. */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** `1536` → `1.5 KiB`; binary units, as `MEDIA_MAX_BYTES` and the quotas use. */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '-';
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${bytes} B`;
  return `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ${UNITS[unit]}`;
}

/** ISO timestamps shortened to the second, in UTC; anything else printed as is. */
export function formatDate(value: unknown): string {
  if (value === null || value === undefined || value === '') return '-';
  const date = value instanceof Date ? value : typeof value === 'string' || typeof value === 'number' ? new Date(value) : null;
  if (!date || Number.isNaN(date.getTime())) return String(value);
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function formatBool(value: unknown): string {
  if (value === true) return 'yes';
  if (value === false) return 'no';
  return '-';
}

/** Any JSON value as one line of text. */
export function formatValue(value: unknown): string {
  if (value === null || value === undefined || value === '') return '-';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

/**
 * Control characters from the server (a filename, an owner id) must not drive the terminal. A field
 * that is not a string (a proxy's or an older server's answer) is shown as its JSON.
 */
export function sanitize(text: unknown): string {
  return (typeof text === 'string' ? text : formatValue(text)).replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

export interface Column<T> {
  header: string;
  value: (row: T) => string;
  align?: 'left' | 'right';
}

/** A plain, aligned table: header row, then one line per row, columns separated by two spaces. */
export function renderTable<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = rows.map((row) => columns.map((column) => sanitize(column.value(row))));
  const widths = columns.map((column, i) => Math.max(column.header.length, ...cells.map((line) => line[i]!.length)));
  const line = (values: readonly string[]) =>
    values
      .map((value, i) => (columns[i]!.align === 'right' ? value.padStart(widths[i]!) : value.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...cells.map(line)].join('\n') + '\n';
}

/** `label  value` lines with the labels aligned. */
export function renderFields(fields: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(0, ...fields.map(([label]) => label.length));
  return fields.map(([label, value]) => `${label.padEnd(width)}  ${sanitize(value)}`.trimEnd()).join('\n') + '\n';
}

/** Characters no shell treats specially, anywhere in a word (not `=`: zsh expands a leading one). */
const SHELL_SAFE = /^[A-Za-z0-9_@%+:,./-]+$/;

/**
 * `value` as one shell word that gives back exactly `value` when pasted into a shell: bare when
 * nothing in it is special, else in single quotes. Control characters (from the service, or typed)
 * are written as `$'\xHH'` (bash, zsh, ksh, POSIX.1-2024 sh) so they never reach the terminal.
 */
export function shellQuote(value: string): string {
  if (SHELL_SAFE.test(value)) return value;
  if (value === '') return "''";
  return value
    .split(/([\u0000-\u001f\u007f-\u009f]+)/)
    .filter((part) => part !== '')
    .map((part) =>
      /^[\u0000-\u001f\u007f-\u009f]/.test(part)
        ? `$'${[...Buffer.from(part, 'utf8')].map((byte) => `\\x${byte.toString(16).padStart(2, '0')}`).join('')}'`
        : `'${part.replace(/'/g, `'\\''`)}'`,
    )
    .join('');
}

/** A command line that a shell runs with exactly these arguments. */
export function shellCommand(args: readonly string[]): string {
  return args.map(shellQuote).join(' ');
}
