import type { SignedUrl } from '../ports/media-storage';

interface Entry {
  storageKey: string;
  signed: SignedUrl;
  issuedAt: number;
}

/**
 * Bounded in-process cache of signed URLs keyed by object and variant (mode and disposition). An
 * entry is reused while more than half of its lifetime remains, so a hot image keeps a stable URL
 * (providers cache by URL) and signing is skipped. Least recently used entries go first.
 */
export class PresignCache {
  /** By `<storage key>|<variant>`, in least-recently-used order. */
  private readonly entries = new Map<string, Entry>();
  /** The entries' keys of each object, so that a delete drops them without a scan of the cache. */
  private readonly byObject = new Map<string, Set<string>>();
  hits = 0;
  misses = 0;

  constructor(private readonly maxEntries = 10_000) {}

  get(storageKey: string, variant: string, now: Date): SignedUrl | undefined {
    const key = `${storageKey}|${variant}`;
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
      this.remove(key, entry);
    }
    this.misses++;
    return undefined;
  }

  set(storageKey: string, variant: string, signed: SignedUrl, now: Date): void {
    if (this.maxEntries <= 0) return;
    const key = `${storageKey}|${variant}`;
    this.entries.delete(key);
    this.entries.set(key, { storageKey, signed, issuedAt: now.getTime() });
    let keys = this.byObject.get(storageKey);
    if (!keys) this.byObject.set(storageKey, (keys = new Set()));
    keys.add(key);
    while (this.entries.size > this.maxEntries) {
      const [oldest, entry] = this.entries.entries().next().value as [string, Entry];
      this.remove(oldest, entry);
    }
  }

  /** Drops every entry of one storage key (object deleted or purged). */
  invalidate(storageKey: string): void {
    const keys = this.byObject.get(storageKey);
    if (!keys) return;
    for (const key of keys) this.entries.delete(key);
    this.byObject.delete(storageKey);
  }

  get size(): number {
    return this.entries.size;
  }

  private remove(key: string, entry: Entry): void {
    this.entries.delete(key);
    const keys = this.byObject.get(entry.storageKey);
    keys?.delete(key);
    if (keys?.size === 0) this.byObject.delete(entry.storageKey);
  }
}
