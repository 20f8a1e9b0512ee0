import { createHash, scryptSync, timingSafeEqual } from 'node:crypto';

/**
 * Shared secrets presented in headers (service, admin and gateway keys), each mapped to what it
 * stands for. Several may be valid at once (rotation). Every candidate is compared, as SHA-256
 * digests in constant time, so neither content, length nor position leaks through timing.
 */
export class KeyRing<T> {
  private readonly entries: { digest: Buffer; value: T }[];

  constructor(entries: readonly { key: string; value: T }[]) {
    this.entries = entries.map(({ key, value }) => ({ digest: digest(key), value }));
  }

  /**
   * Each key is known by an id derived from the key alone, `<prefix>-<12 hex>` ({@link keyId}), never
   * by its position: reordering or removing keys during a rotation keeps every other key's id, so
   * audit actors and the owner of a service's own uploads (`service:<id>`) stay put.
   */
  static fingerprinted(keys: readonly string[], prefix: string): KeyRing<string> {
    return new KeyRing(keys.map((key) => ({ key, value: keyId(key, prefix) })));
  }

  get size(): number {
    return this.entries.length;
  }

  /** What the keys stand for, in the configured order (for the start-up banner; never the keys). */
  get values(): T[] {
    return this.entries.map((entry) => entry.value);
  }

  match(presented: string): T | null {
    const given = digest(presented);
    let found: T | null = null;
    for (const candidate of this.entries) {
      if (timingSafeEqual(candidate.digest, given) && found === null) found = candidate.value;
    }
    return found;
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/** The salt of {@link keyId}: fixed, so an id is the same on every replica and release. */
const KEY_ID_SALT = 'jan-media key id v1';

/**
 * The stable, public id of a shared key: `<prefix>-` and 12 hex characters (48 bits) of
 * scrypt(key, KEY_ID_SALT, N=2^14, r=8, p=1). The id shows up in audit rows, logs and owner names, so it must
 * not help anyone recover the key: a plain hash would let whoever reads a log test guesses of a
 * weak, hand-made key at billions a second; scrypt makes each guess cost ~30 ms and 16 MiB. It is
 * computed once per key at start-up.
 */
export function keyId(key: string, prefix: string): string {
  return `${prefix}-${scryptSync(key, KEY_ID_SALT, 6, { N: 16384, r: 8, p: 1 }).toString('hex')}`;
}
