import { createHash, timingSafeEqual } from 'node:crypto';

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

  /** Service keys are known by their position: `service-key-1`, `service-key-2`… */
  static numbered(keys: readonly string[], prefix: string): KeyRing<string> {
    return new KeyRing(keys.map((key, index) => ({ key, value: `${prefix}-${index + 1}` })));
  }

  get size(): number {
    return this.entries.length;
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
