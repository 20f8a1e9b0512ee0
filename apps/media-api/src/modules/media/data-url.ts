import { Readable } from 'node:stream';
import { DomainError } from '@jan/domain';

const PREFIX = /^data:([a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+)?((?:;[a-z0-9_.-]+=[^;,]*)*)(;base64)?,/i;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** Characters per decoded chunk; a multiple of 4 so every chunk decodes on its own. */
const CHUNK_CHARS = 64 * 1024;

export interface ParsedDataUrl {
  declaredMimeType?: string;
  /** Decoded size, known without decoding. */
  bytes: number;
  /** The decoded bytes, produced chunk by chunk so no second full copy is held in memory. */
  body: Readable;
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
  if (/\s/.test(data)) data = data.replace(/\s+/g, '');
  if (data.length % 4 === 1 || !BASE64.test(data)) throw new DomainError('invalid_data_url', 'data_url payload is not valid base64');
  const padding = data.endsWith('==') ? 2 : data.endsWith('=') ? 1 : 0;
  const bytes = Math.floor((data.length * 3) / 4) - padding;
  return { declaredMimeType: match[1]?.toLowerCase(), bytes, body: Readable.from(chunks(data)) };
}

function* chunks(data: string): Generator<Buffer> {
  for (let i = 0; i < data.length; i += CHUNK_CHARS) yield Buffer.from(data.slice(i, i + CHUNK_CHARS), 'base64');
}
