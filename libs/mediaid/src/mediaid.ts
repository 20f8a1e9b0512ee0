import { decodeTime, monotonicFactory } from 'ulid';
import { randomFillSync } from 'node:crypto';

/** Prefix every media id carries. */
export const MEDIA_ID_PREFIX = 'jan_';

const ULID_LENGTH = 26;
const CANONICAL = /^jan_[0-9a-hjkmnp-tv-z]{26}$/;
const LOOSE = /^jan_([0-9a-hjkmnp-tv-z]{26})$/i;

/** Crockford base32 alphabet used by ULIDs. */
const ENCODING = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * Cryptographic source for the ULID's 80 random bits. The `ulid` package would pick
 * `crypto.getRandomValues` on its own; naming it here keeps that guarantee visible. It asks for
 * one number per character (16 per id), so the bytes come from a pool refilled 1 KiB at a time
 * rather than from a `randomBytes` call (and a Buffer) per character.
 */
const pool = new Uint32Array(256);
let poolIndex = pool.length;

function cryptoPrng(): number {
  if (poolIndex === pool.length) {
    randomFillSync(pool);
    poolIndex = 0;
  }
  return pool[poolIndex++]! / 0x1_0000_0000;
}

export type MediaId = string & { readonly __brand: 'MediaId' };

/**
 * A generator of ids with its own monotonic state: ids made in the same millisecond
 * (or with a clock that stepped back) still sort in creation order.
 */
export function createMediaIdFactory(): (now?: number) => MediaId {
  const nextUlid = monotonicFactory(cryptoPrng);
  return (now = Date.now()) => (MEDIA_ID_PREFIX + nextUlid(now).toLowerCase()) as MediaId;
}

const defaultFactory = createMediaIdFactory();

/**
 * A new id: `jan_` + a lowercase ULID. Monotonic within the process; the random part
 * comes from the OS CSPRNG.
 */
export function newMediaId(now?: number): MediaId {
  return defaultFactory(now);
}

/** True only for the canonical form: `jan_` + 26 lowercase Crockford base32 chars. */
export function isValidMediaId(value: unknown): value is MediaId {
  return typeof value === 'string' && CANONICAL.test(value) && timestampFits(value.slice(4));
}

/**
 * Parses an id as clients send it: either case, `JAN_` prefix, surrounding whitespace.
 * Returns the canonical lowercase id, or `null` when it is not an id.
 */
export function parseMediaId(value: unknown): MediaId | null {
  if (typeof value !== 'string') return null;
  const match = LOOSE.exec(value.trim());
  if (!match) return null;
  const ulid = match[1].toLowerCase();
  if (!timestampFits(ulid)) return null;
  return (MEDIA_ID_PREFIX + ulid) as MediaId;
}

/** Milliseconds since the epoch at which the id was created. */
export function mediaIdTimestamp(id: MediaId | string): number {
  const parsed = parseMediaId(id);
  if (!parsed) throw new TypeError(`not a media id: ${JSON.stringify(id)}`);
  return decodeTime(parsed.slice(MEDIA_ID_PREFIX.length).toUpperCase());
}

/** The 48-bit timestamp must not overflow: the first char is at most '7'. */
function timestampFits(ulid: string): boolean {
  return ulid.length === ULID_LENGTH && ENCODING.indexOf(ulid[0].toUpperCase()) <= 7;
}
