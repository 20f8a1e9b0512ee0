import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * The accepted service keys. Several may be valid at once (rotation). Keys are compared as
 * SHA-256 digests in constant time, so neither content nor length leaks through timing.
 */
export class ServiceKeys {
  private readonly digests: { id: string; digest: Buffer }[];

  constructor(keys: readonly string[]) {
    this.digests = keys.map((key, index) => ({ id: `service-key-${index + 1}`, digest: digest(key) }));
  }

  /** The id of the matching key (`service-key-N`), or null. */
  match(presented: string): string | null {
    const given = digest(presented);
    let found: string | null = null;
    for (const candidate of this.digests) {
      if (timingSafeEqual(candidate.digest, given) && found === null) found = candidate.id;
    }
    return found;
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
