import { Readable } from 'node:stream';
import { DomainError } from '@jan/domain';

/** WHATWG allows spaces between `;` and `base64` (and before the comma). */
const PREFIX = /^\s*data:([a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+)?((?:;[a-z0-9_.-]+=[^;,]*)*)(; *base64)? *,/i;
/** How far into a data URL its `data:…,` prefix is looked for. */
const PREFIX_SEARCH_CHARS = 512;
/** Characters per decoded chunk; a multiple of 4 so every chunk decodes on its own. */
const CHUNK_CHARS = 64 * 1024;
/** Up to this many decoded bytes, a data URL is decoded at once and handed over as one Buffer. */
export const WHOLE_DECODE_MAX_BYTES = 1024 * 1024;

export interface ParsedDataUrl {
  declaredMimeType?: string;
  /** Decoded size, known without decoding. */
  bytes: number;
  /**
   * The decoded bytes: one Buffer for a small data URL (up to WHOLE_DECODE_MAX_BYTES), otherwise
   * a stream that decodes chunk by chunk, so no second full copy of a large one is held in memory.
   */
  body: Buffer | Readable;
}

/**
 * Parses `data:<mime>;base64,<data>`. Only base64 data URLs are accepted (the contract); the
 * payload is read as WHATWG's data: URL processor does: percent-decoded (`%2B` is `+`), then
 * decoded as forgiving-base64: ASCII whitespace (TAB, LF, FF, CR, SPACE) is removed, any other
 * character outside the alphabet (vertical tab, NBSP…) is refused, all checked before anything
 * is staged.
 *
 * Most payloads carry no whitespace, and none is searched for in a small one: the decoder skips
 * whitespace, so a decoded length short of what the text's length promises is the sign, and only
 * then is the text stripped and decoded again. A large one is searched up front, since its decoded
 * size must be known before it streams.
 */
export function parseDataUrl(input: string): ParsedDataUrl {
  const match = PREFIX.exec(input.slice(0, PREFIX_SEARCH_CHARS));
  if (!match) throw new DomainError('invalid_data_url', 'data_url must look like data:<mime>;base64,<data>');
  if (!match[3]) throw new DomainError('invalid_data_url', 'data_url must be base64-encoded (data:<mime>;base64,<data>)');
  const declaredMimeType = match[1]?.toLowerCase();
  const raw = percentDecoded(input.slice(match[0].length));
  let data = raw;
  if (decodedSize(raw) > WHOLE_DECODE_MAX_BYTES && hasAsciiWhitespace(raw)) data = withoutAsciiWhitespace(raw);
  if (decodedSize(data) <= WHOLE_DECODE_MAX_BYTES) {
    let decoded = decodeWhole(data);
    if (!decoded && data === raw) {
      const stripped = withoutAsciiWhitespace(raw);
      if (stripped.length !== raw.length) decoded = decodeWhole(stripped);
    }
    if (!decoded) throw invalidBase64();
    return { declaredMimeType, bytes: decoded.length, body: decoded };
  }
  const bytes = exactSize(data);
  if (bytes === null) throw invalidBase64();
  return { declaredMimeType, bytes, body: Readable.from(chunks(data, paddingOf(data))) };
}

/**
 * What `parseDataUrl(header + payload)` returns when `header` is a whole `data:<mime>;base64,`
 * prefix and `payload` is strict base64 (no whitespace, no percent escapes) of at most
 * WHOLE_DECODE_MAX_BYTES; null for anything else, which only `parseDataUrl` decides (it may still
 * accept it, or refuse it with its own error). The JSON body parser of ingest uses it to decode a
 * data URL straight from the body's bytes (`data-url-body.ts`).
 */
export function parseStrictDataUrl(header: string, payload: string): ParsedDataUrl | null {
  if (header.length > PREFIX_SEARCH_CHARS) return null;
  const match = PREFIX.exec(header);
  if (!match || match[0].length !== header.length || !match[3]) return null;
  if (decodedSize(payload) > WHOLE_DECODE_MAX_BYTES) return null;
  const decoded = decodeWhole(payload);
  if (!decoded) return null;
  return { declaredMimeType: match[1]?.toLowerCase(), bytes: decoded.length, body: decoded };
}

/** What `data` decodes to if it is valid base64 without whitespace: known from its length alone. */
function decodedSize(data: string): number {
  return Math.floor((data.length * 3) / 4) - paddingOf(data);
}

/**
 * {@link decodedSize}, or null when the length and padding cannot be base64: a final quantum of a
 * single character, or `=` that does not complete the last quantum (`AA=` is tolerated, see
 * api.md). Without this check a trailing `=` made up for a character Node's decoder skipped
 * (`Ds.YspFYq=`) or for a dangling one it dropped (`wrv2b=`), and the length check passed.
 */
function exactSize(data: string): number | null {
  const padding = paddingOf(data);
  const characters = data.length - padding;
  if (characters % 4 === 1) return null;
  if (padding > 0 && data.length % 4 !== 0 && !(padding === 1 && characters % 4 === 2)) return null;
  return Math.floor((characters * 3) / 4);
}

function paddingOf(data: string): number {
  return data.endsWith('==') ? 2 : data.endsWith('=') ? 1 : 0;
}

/** The bytes, or null when `data` is not strict base64 (Node's decoder skips what it cannot read). */
function decodeWhole(data: string): Buffer | null {
  const size = exactSize(data);
  if (size === null) return null;
  const decoded = Buffer.from(data, 'base64');
  return decoded.length === size ? decoded : null;
}

// indexOf is a memchr: on a 27 MB payload the five take ~3 ms together, one regex test for the
// class ~10 ms (a regex replace over such a string was 8-20% of ingest CPU).
function hasAsciiWhitespace(data: string): boolean {
  return data.indexOf('\n') >= 0 || data.indexOf('\r') >= 0 || data.indexOf(' ') >= 0 || data.indexOf('\t') >= 0 || data.indexOf('\f') >= 0;
}

/**
 * WHATWG's percent-decode: each `%` and two hex digits is that byte, any other `%` stays. A byte
 * outside the base64 alphabet (`%2E`, `%C2%A0`) is then refused like the character itself.
 */
function percentDecoded(data: string): string {
  if (data.indexOf('%') < 0) return data;
  return data.replace(/%([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** WHATWG's ASCII whitespace only: `\s` would also drop VT, NBSP and other Unicode spaces. */
function withoutAsciiWhitespace(data: string): string {
  return data.replace(/[\t\n\f\r ]+/g, '');
}

/**
 * Decodes chunk by chunk and validates as it goes: Node's decoder skips characters outside the
 * alphabet and stops at misplaced padding, so a chunk that decodes to fewer bytes than its length
 * promises was not valid base64 (the URL-safe `-` and `_` decode like `+` and `/`).
 */
function* chunks(data: string, padding: number): Generator<Buffer> {
  for (let i = 0; i < data.length; i += CHUNK_CHARS) {
    const text = data.slice(i, i + CHUNK_CHARS);
    const last = i + CHUNK_CHARS >= data.length;
    const decoded = Buffer.from(text, 'base64');
    const expected = Math.floor((text.length * 3) / 4) - (last ? padding : 0);
    if (decoded.length !== expected) throw invalidBase64();
    yield decoded;
  }
}

function invalidBase64(): DomainError {
  return new DomainError('invalid_data_url', 'data_url payload is not valid base64');
}
