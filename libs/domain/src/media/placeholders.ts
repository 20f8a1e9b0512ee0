import { parseMediaId, type MediaId } from '@jan/mediaid';

/**
 * `data:<mime>;jan_<id>` and `data:<mime>;base64,jan_<id>`, where `<mime>` is `image/<subtype>`.
 * The id may come in either case; a trailing letter or digit means it is something longer.
 */
const PLACEHOLDER = /data:(image\/[a-z0-9.+-]+);(?:base64,)?(jan_[0-9a-z]{26})(?![0-9a-z])/gi;

const JAN_PREFIX = /jan_/i;

/** Cheap pre-check so strings without placeholders are never scanned by the regex engine. */
function mayContainPlaceholder(s: string): boolean {
  return s.length >= 40 && s.includes('data:') && JAN_PREFIX.test(s);
}

type Key = string | number;

/** One placeholder inside a string: where it sits (UTF-16 offsets) and which id it names. */
export interface Occurrence {
  start: number;
  end: number;
  id: MediaId;
}

/** The placeholders in one string, in order. */
export function findPlaceholders(text: string): Occurrence[] {
  const occurrences: Occurrence[] = [];
  if (!mayContainPlaceholder(text)) return occurrences;
  for (const match of text.matchAll(PLACEHOLDER)) {
    const id = parseMediaId(match[2]);
    if (id) occurrences.push({ start: match.index, end: match.index + match[0].length, id });
  }
  return occurrences;
}

/** A string value holding placeholders, and the keys that lead to it from the root. */
interface Site {
  path: Key[];
  text: string;
  occurrences: Occurrence[];
}

/**
 * The placeholders found in one walk of a parsed JSON value: the distinct ids to look up, and
 * `replace`, which writes the URLs in without walking or matching again (only the strings that
 * held placeholders, and the containers on their paths, are touched).
 */
export interface PlaceholderScan<T = unknown> {
  readonly ids: MediaId[];
  /**
   * A copy of the value with every placeholder whose id `replacement` knows replaced. Keys are
   * never touched; the input is not modified; unchanged subtrees are shared, not copied.
   */
  replace(replacement: (id: MediaId) => string | undefined): T;
}

/** Walks `value` once, looking only inside string values (never keys), at any depth. */
export function scanPlaceholders(value: unknown): PlaceholderScan {
  const sites: Site[] = [];
  const ids = new Set<MediaId>();
  const path: Key[] = [];

  const visit = (node: unknown): void => {
    if (typeof node === 'string') {
      const occurrences = findPlaceholders(node);
      if (!occurrences.length) return;
      for (const o of occurrences) ids.add(o.id);
      sites.push({ path: path.slice(), text: node, occurrences });
    } else if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) {
        path.push(i);
        visit(node[i]);
        path.pop();
      }
    } else if (node !== null && typeof node === 'object') {
      const record = node as Record<string, unknown>;
      for (const key of Object.keys(record)) {
        path.push(key);
        visit(record[key]);
        path.pop();
      }
    }
  };
  visit(value);

  return {
    ids: [...ids],
    replace: (replacement) => (sites.length ? rewrite(value, sites, replacement) : value),
  };
}

/** Distinct ids referenced by placeholders anywhere inside string values of `value`. */
export function collectPlaceholderIds(value: unknown): MediaId[] {
  return scanPlaceholders(value).ids;
}

/** `scanPlaceholders(value).replace(replacement)`, for callers that scan only once anyway. */
export function replacePlaceholders(value: unknown, replacement: (id: MediaId) => string | undefined): unknown {
  return scanPlaceholders(value).replace(replacement);
}

function rewrite(root: unknown, sites: Site[], replacement: (id: MediaId) => string | undefined): unknown {
  // Each container on a changed path is copied once, however many of its strings change.
  const copies = new Map<object, Record<Key, unknown>>();
  const copyOf = (original: object): Record<Key, unknown> => {
    let copy = copies.get(original);
    if (!copy) {
      copy = (Array.isArray(original) ? original.slice() : { ...original }) as Record<Key, unknown>;
      copies.set(original, copy);
    }
    return copy;
  };

  let result = root;
  for (const site of sites) {
    const text = substitutePlaceholders(site.text, site.occurrences, replacement);
    if (text === site.text) continue;
    if (site.path.length === 0) return text;
    let original = root as Record<Key, unknown>;
    let copy = copyOf(original);
    result = copy;
    const last = site.path.length - 1;
    for (let i = 0; i < last; i++) {
      const key = site.path[i]!;
      const child = original[key] as Record<Key, unknown>;
      const childCopy = copyOf(child);
      setOwn(copy, key, childCopy);
      original = child;
      copy = childCopy;
    }
    setOwn(copy, site.path[last]!, text);
  }
  return result;
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

function setOwn(target: Record<Key, unknown>, key: Key, value: unknown): void {
  // Plain assignment to "__proto__" would set the prototype; defineProperty keeps it an own property.
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}
