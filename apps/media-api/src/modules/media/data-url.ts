import { Readable } from 'node:stream';
import { DomainError } from '@jan/domain';

const PREFIX = /^\s*data:([a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+)?((?:;[a-z0-9_.-]+=[^;,]*)*)(;base64)?,/i;
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
 * payload must be strict base64 (whitespace tolerated), checked before anything is staged.
 */
export function parseDataUrl(input: string): ParsedDataUrl {
  const match = PREFIX.exec(input.slice(0, 512));
  if (!match) throw new DomainError('invalid_data_url', 'data_url must look like data:<mime>;base64,<data>');
  if (!match[3]) throw new DomainError('invalid_data_url', 'data_url must be base64-encoded (data:<mime>;base64,<data>)');
  let data = input.slice(match[0].length);
  // indexOf is a memchr; a regex over a 27 MB string was 8-20% of ingest CPU.
  if (data.indexOf('\n') >= 0 || data.indexOf('\r') >= 0 || data.indexOf(' ') >= 0 || data.indexOf('\t') >= 0) {
    data = data.replace(/\s+/g, '');
  }
  if (data.length % 4 === 1) throw invalidBase64();
  const padding = data.endsWith('==') ? 2 : data.endsWith('=') ? 1 : 0;
  const bytes = Math.floor((data.length * 3) / 4) - padding;
  const declaredMimeType = match[1]?.toLowerCase();
  if (bytes <= WHOLE_DECODE_MAX_BYTES) {
    const decoded = Buffer.from(data, 'base64');
    if (decoded.length !== bytes) throw invalidBase64();
    return { declaredMimeType, bytes, body: decoded };
  }
  return { declaredMimeType, bytes, body: Readable.from(chunks(data, padding)) };
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
