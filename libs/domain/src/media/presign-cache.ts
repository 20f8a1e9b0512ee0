import type { SignedUrl } from '../ports/media-storage';

/**
 * Bounded in-process cache of signed URLs keyed by (object, mode, disposition). An entry is
 * reused while more than half of its lifetime remains, so a hot image keeps a stable URL
 * (providers cache by URL) and signing is skipped. Least recently used entries go first.
 */
export class PresignCache {
  private readonly entries = new Map<string, { signed: SignedUrl; issuedAt: number }>();
  hits = 0;
  misses = 0;

  constructor(private readonly maxEntries = 10_000) {}

  get(key: string, now: Date): SignedUrl | undefined {
    const entry = this.entries.get(key);
    if (entry) {
      const lifetime = entry.signed.expiresAt.getTime() - entry.issuedAt;
      const remaining = entry.signed.expiresAt.getTime() - now.getTime();
      if (remaining > lifetime / 2) {
        this.entries.delete(key);
        this.entries.set(key, entry);
        this.hits++;
        return entry.signed;
      }
      this.entries.delete(key);
    }
    this.misses++;
    return undefined;
  }

  set(key: string, signed: SignedUrl, now: Date): void {
    if (this.maxEntries <= 0) return;
    this.entries.delete(key);
    this.entries.set(key, { signed, issuedAt: now.getTime() });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }

  /** Drops every entry of one storage key (object deleted or purged). */
  invalidate(storageKey: string): void {
    const prefix = storageKey + '|';
    for (const key of this.entries.keys()) if (key.startsWith(prefix)) this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
