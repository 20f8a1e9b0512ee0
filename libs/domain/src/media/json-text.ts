import type { MediaId } from '@jan/mediaid';
import { DomainError } from './errors';
import { findPlaceholders, substitutePlaceholders, type Occurrence, type PlaceholderScan } from './placeholders';

/**
 * Placeholders in JSON *text*, for resolve's hot path: one validating pass over the UTF-8 bytes
 * instead of JSON.parse, a walk and JSON.stringify. The output is the input's own bytes with only
 * the placeholders swapped, so everything else survives byte for byte: numbers beyond 2^53,
 * `1.0`, `-0` and `1e21`, escapes, key order, duplicate keys and whitespace. Structure is tracked
 * exactly as a parser would, so keys are never touched and only string values are looked into.
 */

/** Bytes `[start, end)` of a JSON text. */
export interface TextSpan {
  readonly start: number;
  readonly end: number;
}

export interface JsonText {
  readonly bytes: Uint8Array;
  /** The root object's members by key (the last wins, as with JSON.parse); null if the root is not an object. */
  readonly members: ReadonlyMap<string, TextSpan> | null;
  /** The JSON value at `range` (a member's range, say), parsed. */
  valueAt(range: TextSpan): unknown;
  /**
   * Placeholders inside string values within `range` (the whole text by default). `replace`
   * returns the bytes of `range` with the known ids' placeholders replaced, as parts to
   * concatenate; the URLs are written JSON-escaped.
   */
  placeholders(range?: TextSpan): PlaceholderScan<Uint8Array[]>;
}

/**
 * A string value (never a key) that may hold a placeholder: it has a `;` right before a `j` or
 * `b` (both forms do), or a `\u` escape that could spell one. The range includes the quotes.
 */
interface Candidate {
  start: number;
  end: number;
  /** Holds a backslash escape: its text is the decoded value, not a copy of its bytes. */
  escaped: boolean;
  ascii: boolean;
}

const OBJECT = 1;
const ARRAY = 2;

const decoder = new TextDecoder();
const encoder = new TextEncoder();

function invalidJson(offset: number): DomainError {
  return new DomainError('invalid_request', 'request body is not valid JSON', { offset });
}

/**
 * Validates `bytes` as one JSON text (RFC 8259, UTF-8; a leading byte order mark is skipped, as
 * the JSON body parser does) and indexes what resolve needs. Throws `invalid_request` otherwise.
 * Iterative (any depth); the position is threaded through plain functions so that it stays a
 * local variable in each loop.
 */
export function readJsonText(bytes: Uint8Array): JsonText {
  const b = bytes;
  const n = b.length;
  let i = n >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? 3 : 0;
  const candidates: Candidate[] = [];
  const stack: number[] = [];
  let members: Map<string, TextSpan> | null = null;
  let memberKey = '';
  let memberStart = 0;

  /** Reads `"key" :` at `i`; keeps the decoded key when it belongs to the root object. */
  const readKey = (): void => {
    i = skipWhitespace(b, i);
    if (b[i] !== 0x22) throw invalidJson(i);
    const start = i;
    i = readString(b, i, null);
    if (stack.length === 1) memberKey = JSON.parse(decoder.decode(b.subarray(start, i))) as string;
    i = skipWhitespace(b, i);
    if (b[i] !== 0x3a) throw invalidJson(i);
    i++;
  };

  for (;;) {
    // A value starts here.
    i = skipWhitespace(b, i);
    if (members && stack.length === 1) memberStart = i;
    const c = b[i];
    if (c === 0x7b) {
      i = skipWhitespace(b, i + 1);
      if (b[i] === 0x7d) {
        i++;
        if (stack.length === 0) members = new Map();
      } else {
        stack.push(OBJECT);
        if (stack.length === 1) members = new Map();
        readKey();
        continue;
      }
    } else if (c === 0x5b) {
      i = skipWhitespace(b, i + 1);
      if (b[i] === 0x5d) i++;
      else {
        stack.push(ARRAY);
        continue;
      }
    } else if (c === 0x22) i = readString(b, i, candidates);
    else if (c === 0x2d || isDigit(c)) i = readNumber(b, i);
    else if (c === 0x74) i = readLiteral(b, i, TRUE);
    else if (c === 0x66) i = readLiteral(b, i, FALSE);
    else if (c === 0x6e) i = readLiteral(b, i, NULL);
    else throw invalidJson(i);

    // A value ended: close the containers it completes, then find where the next one starts.
    for (;;) {
      if (stack.length === 0) {
        i = skipWhitespace(b, i);
        if (i !== n) throw invalidJson(i);
        return jsonText(b, members, candidates);
      }
      if (members && stack.length === 1) members.set(memberKey, { start: memberStart, end: i });
      i = skipWhitespace(b, i);
      const top = stack[stack.length - 1];
      const d = b[i];
      if (d === 0x2c) {
        i++;
        if (top === OBJECT) readKey();
        break;
      }
      if ((top === OBJECT && d === 0x7d) || (top === ARRAY && d === 0x5d)) {
        i++;
        stack.pop();
        continue;
      }
      throw invalidJson(i);
    }
  }
}

function skipWhitespace(b: Uint8Array, i: number): number {
  const n = b.length;
  while (i < n) {
    const c = b[i]!;
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
    else break;
  }
  return i;
}

/**
 * Reads the string token at `i` (a quote) and returns the position after it. A string value that
 * may hold a placeholder is added to `candidates` (keys pass null).
 */
function readString(b: Uint8Array, i: number, candidates: Candidate[] | null): number {
  const n = b.length;
  const start = i++;
  let escaped = false;
  let ascii = true;
  let maybe = false;
  for (;;) {
    // Ordinary characters are most of any text: skip them with one table lookup each.
    while (i < n && STRING_BYTE[b[i]!] === ORDINARY) i++;
    if (i >= n) throw invalidJson(i);
    const c = b[i]!;
    if (c === 0x22) break;
    if (c === 0x5c) {
      escaped = true;
      const e = b[i + 1];
      if (e === 0x75) {
        for (let k = i + 2; k < i + 6; k++) if (k >= n || !isHexDigit(b[k]!)) throw invalidJson(k);
        // `\uXXXX` can spell any character of a placeholder; `\n` and the like cannot.
        maybe = true;
        i += 6;
      } else if (e === 0x22 || e === 0x5c || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
        i += 2;
      } else {
        throw invalidJson(i);
      }
    } else if (c < 0x20) {
      throw invalidJson(i);
    } else if (c >= 0x80) {
      ascii = false;
      i = utf8SequenceEnd(b, i);
    } else {
      // `;`: both forms put one right before `jan_` or `base64,`. A cheap filter; the regex decides.
      const d = (b[i + 1] ?? 0) | 0x20;
      if (d === 0x6a || d === 0x62) maybe = true;
      i++;
    }
  }
  i++;
  if (candidates && maybe) candidates.push({ start, end: i, escaped, ascii });
  return i;
}

function readNumber(b: Uint8Array, i: number): number {
  if (b[i] === 0x2d) i++;
  if (b[i] === 0x30) i++;
  else if (isNonZeroDigit(b[i])) while (isDigit(b[i])) i++;
  else throw invalidJson(i);
  if (b[i] === 0x2e) {
    i++;
    if (!isDigit(b[i])) throw invalidJson(i);
    while (isDigit(b[i])) i++;
  }
  if (b[i] === 0x65 || b[i] === 0x45) {
    i++;
    if (b[i] === 0x2b || b[i] === 0x2d) i++;
    if (!isDigit(b[i])) throw invalidJson(i);
    while (isDigit(b[i])) i++;
  }
  return i;
}

function readLiteral(b: Uint8Array, i: number, literal: readonly number[]): number {
  for (const c of literal) {
    if (b[i] !== c) throw invalidJson(i);
    i++;
  }
  return i;
}

/** Bytes inside a string that need a closer look: quote, backslash, `;`, control and non-ASCII. */
const ORDINARY = 0;
const STRING_BYTE = new Uint8Array(256);
for (let c = 0; c < 256; c++) STRING_BYTE[c] = c < 0x20 || c >= 0x80 || c === 0x22 || c === 0x5c || c === 0x3b ? 1 : ORDINARY;

const TRUE = [0x74, 0x72, 0x75, 0x65];
const FALSE = [0x66, 0x61, 0x6c, 0x73, 0x65];
const NULL = [0x6e, 0x75, 0x6c, 0x6c];

function isDigit(c: number | undefined): boolean {
  return c !== undefined && c >= 0x30 && c <= 0x39;
}

function isNonZeroDigit(c: number | undefined): boolean {
  return c !== undefined && c >= 0x31 && c <= 0x39;
}

function isHexDigit(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

/** The end of the UTF-8 sequence starting at `i`; throws on anything that is not well-formed UTF-8. */
function utf8SequenceEnd(b: Uint8Array, i: number): number {
  const c = b[i]!;
  let length: number;
  let low = 0x80;
  let high = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) length = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    length = 3;
    if (c === 0xe0) low = 0xa0; // overlong
    if (c === 0xed) high = 0x9f; // surrogates
  } else if (c >= 0xf0 && c <= 0xf4) {
    length = 4;
    if (c === 0xf0) low = 0x90; // overlong
    if (c === 0xf4) high = 0x8f; // above U+10FFFF
  } else throw invalidJson(i);
  if (i + length > b.length) throw invalidJson(i);
  const second = b[i + 1]!;
  if (second < low || second > high) throw invalidJson(i + 1);
  for (let k = i + 2; k < i + length; k++) if ((b[k]! & 0xc0) !== 0x80) throw invalidJson(k);
  return i + length;
}

/** A candidate string that does hold placeholders, with where to write each URL. */
interface Site {
  candidate: Candidate;
  /** Escaped strings: the decoded text, rewritten whole. */
  text: string;
  occurrences: Occurrence[];
  /** Unescaped strings: each occurrence's byte range in the text. */
  byteRanges: TextSpan[] | null;
}

function jsonText(bytes: Uint8Array, members: Map<string, TextSpan> | null, candidates: Candidate[]): JsonText {
  return {
    bytes,
    members,
    valueAt: (range) => JSON.parse(decoder.decode(bytes.subarray(range.start, range.end))) as unknown,
    placeholders: (range = { start: 0, end: bytes.length }) => scanCandidates(bytes, candidates, range),
  };
}

function scanCandidates(bytes: Uint8Array, candidates: readonly Candidate[], range: TextSpan): PlaceholderScan<Uint8Array[]> {
  const counts = new Map<MediaId, number>();
  const sites: Site[] = [];
  const malformed: string[] = [];
  for (const candidate of candidates) {
    if (candidate.start < range.start || candidate.end > range.end) continue;
    const token = bytes.subarray(candidate.start, candidate.end);
    const text = candidate.escaped ? (JSON.parse(decoder.decode(token)) as string) : contentOf(token, candidate.ascii);
    const occurrences = findPlaceholders(text, malformed);
    if (!occurrences.length) continue;
    for (const o of occurrences) counts.set(o.id, (counts.get(o.id) ?? 0) + 1);
    sites.push({ candidate, text, occurrences, byteRanges: candidate.escaped ? null : byteRangesOf(candidate, text, occurrences) });
  }

  return {
    ids: [...counts.keys()],
    counts,
    malformed: [...new Set(malformed)],
    replace: (replacement) => {
      const parts: Uint8Array[] = [];
      const encoded = new Map<MediaId, Uint8Array | null>();
      const urlBytes = (id: MediaId): Uint8Array | null => {
        let value = encoded.get(id);
        if (value === undefined) {
          const url = replacement(id);
          // The placeholder sat inside a JSON string: the URL goes in escaped the same way.
          value = url === undefined ? null : encoder.encode(JSON.stringify(url).slice(1, -1));
          encoded.set(id, value);
        }
        return value;
      };
      let from = range.start;
      for (const site of sites) {
        if (site.byteRanges) {
          site.occurrences.forEach((o, k) => {
            const url = urlBytes(o.id);
            if (!url) return;
            parts.push(bytes.subarray(from, site.byteRanges![k]!.start), url);
            from = site.byteRanges![k]!.end;
          });
        } else {
          const text = substitutePlaceholders(site.text, site.occurrences, (id) => replacement(id));
          if (text === site.text) continue;
          parts.push(bytes.subarray(from, site.candidate.start), encoder.encode(JSON.stringify(text)));
          from = site.candidate.end;
        }
      }
      parts.push(bytes.subarray(from, range.end));
      return parts;
    },
  };
}

/** The text between the quotes of an unescaped string token. */
function contentOf(token: Uint8Array, ascii: boolean): string {
  const content = token.subarray(1, -1);
  // Short ASCII strings (a placeholder URL, say) are cheaper to build than to run through the decoder.
  return ascii && content.length <= 1024 ? String.fromCharCode.apply(null, content as unknown as number[]) : decoder.decode(content);
}

/** Byte offsets of placeholders (ASCII) in an unescaped string whose UTF-16 offsets are known. */
function byteRangesOf(candidate: Candidate, text: string, occurrences: readonly Occurrence[]): TextSpan[] {
  const contentStart = candidate.start + 1;
  return occurrences.map((o) => {
    const start = contentStart + (candidate.ascii ? o.start : encoder.encode(text.slice(0, o.start)).length);
    return { start, end: start + (o.end - o.start) };
  });
}
