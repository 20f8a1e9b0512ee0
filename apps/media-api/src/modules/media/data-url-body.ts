import { randomBytes } from 'node:crypto';
import { parseJson } from '../../http/raw-json-body';
import { parseStrictDataUrl, type ParsedDataUrl } from './data-url';

/** Smaller bodies are parsed whole: there is nothing worth cutting out of them. */
const MIN_BODY_BYTES = 4 * 1024;
/** As far as `parseDataUrl` looks for the `data:…,` prefix. */
const MAX_PREFIX_BYTES = 512;
const OPENING = Buffer.from('"data:');
const QUOTE = 0x22;
const COMMA = 0x2c;
const BACKSLASH = 0x5c;
/**
 * Takes the data URL's place in the text that is parsed. Random per process, so that no client can
 * put it in a body on purpose; it is never answered or logged.
 */
const STAND_IN = `jan-data-url-${randomBytes(16).toString('hex')}`;
const STAND_IN_TOKEN = Buffer.from(JSON.stringify(STAND_IN));

const decoded = new WeakMap<object, ParsedDataUrl>();

/**
 * The JSON body of `POST /v1/media`, as `parseJson` reads it, but with the data URL decoded
 * straight from the body's bytes. Read the usual way, a 64 KiB image was first the body's text (87
 * KB), then the parsed string (87 KB again), then the decoded bytes; here it is the base64 text
 * once, then the bytes. The text around it (a few dozen bytes) is parsed as usual.
 *
 * This path is taken only where its result is provably the usual one: the first `"data:` in the
 * body opens a string whose prefix (up to its first comma) is printable ASCII without a backslash
 * and whose payload is strict base64 of at most 1 MiB (`parseStrictDataUrl`: no whitespace, no
 * escapes, every character in the alphabet), so JSON would read that string byte for byte as it is;
 * and, with a stand-in in its place, the rest parses and puts the stand-in at `source.data_url` and
 * nowhere else (so the string was a whole token, and the last `data_url` key of `source`).
 * Anything else (another place, several data URLs, whitespace or percent escapes, JSON escapes, a
 * large data URL that must stream, invalid JSON) is parsed the usual way, with the usual errors.
 *
 * The parsed value's `source.data_url` then holds only the prefix (`data:image/png;base64,`);
 * {@link takeDecodedDataUrl} hands over what `parseDataUrl` would have returned for the whole.
 */
export function parseIngestJson(body: Buffer): unknown {
  if (body.length >= MIN_BODY_BYTES) {
    const value = withDataUrlCutOut(body);
    if (value) return value;
  }
  return parseJson(body);
}

/** The data URL {@link parseIngestJson} decoded out of this parsed body, once. */
export function takeDecodedDataUrl(body: unknown): ParsedDataUrl | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const parsed = decoded.get(body);
  decoded.delete(body);
  return parsed;
}

function withDataUrlCutOut(body: Buffer): object | null {
  const start = body.indexOf(OPENING);
  if (start < 0) return null;
  const end = body.indexOf(QUOTE, start + 1);
  const comma = body.indexOf(COMMA, start);
  if (end < 0 || comma < 0 || comma > end || comma - start > MAX_PREFIX_BYTES) return null;
  for (let i = start + 1; i <= comma; i++) {
    const byte = body[i];
    if (byte < 0x20 || byte > 0x7e || byte === BACKSLASH) return null;
  }
  const prefix = body.toString('latin1', start + 1, comma + 1);
  const dataUrl = parseStrictDataUrl(prefix, body.toString('latin1', comma + 1, end));
  if (!dataUrl) return null;

  const text = Buffer.concat([body.subarray(0, start), STAND_IN_TOKEN, body.subarray(end + 1)]);
  let value: unknown;
  try {
    value = parseJson(text);
  } catch {
    return null;
  }
  const source = isRecord(value) && Object.hasOwn(value, 'source') ? value.source : undefined;
  if (!isRecord(source) || source.data_url !== STAND_IN) return null;
  source.data_url = prefix;
  decoded.set(value as object, dataUrl);
  return value as object;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
