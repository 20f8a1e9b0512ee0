import { parseMediaId, type MediaId } from '@jan/mediaid';

/**
 * `data:<mime>;jan_<id>` and `data:<mime>;base64,jan_<id>`, where `<mime>` is `image/<subtype>`.
 * The id may come in either case; a trailing letter or digit means it is something longer.
 */
const PLACEHOLDER = /data:(image\/[a-z0-9.+-]+);(?:base64,)?(jan_[0-9a-z]{26})(?![0-9a-z])/gi;

/** Cheap pre-check so strings without placeholders are never scanned by the regex engine. */
function mayContainPlaceholder(s: string): boolean {
  return s.length >= 40 && s.includes('data:') && JAN_PREFIX.test(s);
}

const JAN_PREFIX = /jan_/i;

/** Distinct ids referenced by placeholders anywhere inside string values of `value`. */
export function collectPlaceholderIds(value: unknown): MediaId[] {
  const found = new Set<MediaId>();
  visitStrings(value, (s) => {
    if (!mayContainPlaceholder(s)) return;
    for (const match of s.matchAll(PLACEHOLDER)) {
      const id = parseMediaId(match[2]);
      if (id) found.add(id);
    }
  });
  return [...found];
}

/**
 * A copy of `value` in which every placeholder whose id `replacement` knows is replaced.
 * Keys are never touched; unchanged subtrees are shared, not copied.
 */
export function replacePlaceholders(value: unknown, replacement: (id: MediaId) => string | undefined): unknown {
  return mapStrings(value, (s) => {
    if (!mayContainPlaceholder(s)) return s;
    return s.replace(PLACEHOLDER, (whole, _mime: string, rawId: string) => {
      const id = parseMediaId(rawId);
      const url = id ? replacement(id) : undefined;
      return url ?? whole;
    });
  });
}

function visitStrings(value: unknown, visit: (s: string) => void): void {
  if (typeof value === 'string') {
    visit(value);
  } else if (Array.isArray(value)) {
    for (const item of value) visitStrings(item, visit);
  } else if (value !== null && typeof value === 'object') {
    for (const key of Object.keys(value)) visitStrings((value as Record<string, unknown>)[key], visit);
  }
}

function mapStrings(value: unknown, map: (s: string) => string): unknown {
  if (typeof value === 'string') return map(value);
  if (Array.isArray(value)) {
    let out: unknown[] | null = null;
    for (let i = 0; i < value.length; i++) {
      const next = mapStrings(value[i], map);
      if (next !== value[i]) {
        out ??= value.slice();
        out[i] = next;
      }
    }
    return out ?? value;
  }
  if (value !== null && typeof value === 'object') {
    let out: Record<string, unknown> | null = null;
    const source = value as Record<string, unknown>;
    for (const key of Object.keys(source)) {
      const next = mapStrings(source[key], map);
      if (next !== source[key]) {
        out ??= { ...source };
        // defineProperty keeps a "__proto__" key an ordinary own property.
        Object.defineProperty(out, key, { value: next, enumerable: true, writable: true, configurable: true });
      }
    }
    return out ?? value;
  }
  return value;
}
