import { parseMediaId, type MediaId } from '@jan/mediaid';

/**
 * `data:<mime>;jan_<id>` and `data:<mime>;base64,jan_<id>`, where `<mime>` is `image/<subtype>`,
 * in any case. Standard base64 has no `_`, so no real data URL reads `jan_` there: whatever
 * letters and digits follow are the id as written (`jan_abc` is a malformed placeholder, not text),
 * and `=` right after it is base64 padding someone appended, which belongs to the placeholder.
 */
const PLACEHOLDER = /data:image\/[a-z0-9.+-]+;(?:base64,)?(jan_[0-9a-z]*)(=*)/gi;

/** Base64 pads with at most two `=`; more make the placeholder malformed. */
const MAX_PADDING = 2;

/** The shortest placeholder-shaped text: `data:image/a;jan_`. */
const MIN_LENGTH = 17;

const DATA_SCHEME = /data:/i;
const JAN_PREFIX = /jan_/i;

/** Cheap pre-check so strings without placeholders are never scanned by the whole pattern. */
function mayContainPlaceholder(s: string): boolean {
  // Case-insensitive like the pattern: `DATA:IMAGE/PNG;JAN_…` is a placeholder too.
  return s.length >= MIN_LENGTH && DATA_SCHEME.test(s) && JAN_PREFIX.test(s);
}

/** One placeholder inside a string: where it sits (UTF-16 offsets) and which id it names. */
export interface Occurrence {
  start: number;
  end: number;
  id: MediaId;
}

/**
 * The placeholders in one string, in order, each spanning any padding after its id. A placeholder
 * whose `jan_…` is no media id (another length, a letter Crockford base32 leaves out, a timestamp
 * past the ULID range, more than two `=`) is not one of them; its id, as written (with the `=`
 * when they are what is wrong), goes to `malformed` when given, so that it is reported rather
 * than passed on.
 */
export function findPlaceholders(text: string, malformed?: string[]): Occurrence[] {
  const occurrences: Occurrence[] = [];
  if (!mayContainPlaceholder(text)) return occurrences;
  for (const match of text.matchAll(PLACEHOLDER)) {
    const [whole, written, padding] = match;
    const id = padding.length <= MAX_PADDING ? parseMediaId(written) : null;
    if (id) occurrences.push({ start: match.index, end: match.index + whole.length, id });
    else malformed?.push(padding.length <= MAX_PADDING ? written : written + padding);
  }
  return occurrences;
}

/**
 * The placeholders found in one scan: the distinct ids to look up, and `replace`, which writes
 * the URLs in without scanning again. `readJsonText(bytes).placeholders()` makes one.
 */
export interface PlaceholderScan<T> {
  readonly ids: MediaId[];
  /** How many times each id occurs: what the replaced value holds is that many copies of its URL. */
  readonly counts: ReadonlyMap<MediaId, number>;
  /** Placeholders whose id is no media id, each once, as written: never looked up or replaced. */
  readonly malformed: string[];
  /** The scanned value with every placeholder whose id `replacement` knows replaced; keys are never touched. */
  replace(replacement: (id: MediaId) => string | undefined): T;
}

/** `text` with each occurrence whose id `replacement` knows replaced (the same string if none). */
export function substitutePlaceholders(text: string, occurrences: readonly Occurrence[], replacement: (id: MediaId) => string | undefined): string {
  let out = '';
  let from = 0;
  for (const { start, end, id } of occurrences) {
    const url = replacement(id);
    if (url === undefined) continue;
    out += text.slice(from, start) + url;
    from = end;
  }
  return from === 0 ? text : out + text.slice(from);
}
