export interface IdempotentEntry {
  expiresAt: number;
  /** What the first request sent: a hash of its JSON body, or a multipart body's length. */
  fingerprint: string;
  result: Promise<unknown>;
}

export interface IdempotencyStoreLimits {
  /** Entries kept at most. */
  maxEntries: number;
  /**
   * Characters kept at most, over every entry: its scope and its answer as JSON. One admin purge
   * answer lists up to 10,000 ids; held for the whole TTL, a count alone let them add up to
   * gigabytes.
   */
  maxChars: number;
}

interface Stored extends IdempotentEntry {
  chars: number;
}

/**
 * The answers `IdempotencyInterceptor` replays, per scope (caller, path and key), bounded by
 * count and by size: past either, the oldest entries go first. An answer counts once it has
 * arrived (a pending one only by its scope); a failed one is forgotten.
 */
export class IdempotencyStore {
  private readonly entries = new Map<string, Stored>();
  private chars = 0;

  constructor(private readonly limits: IdempotencyStoreLimits = { maxEntries: 10_000, maxChars: 32 * 1024 * 1024 }) {}

  /** The live entry of `scope`, if any. */
  find(scope: string, now: number): IdempotentEntry | undefined {
    const found = this.entries.get(scope);
    if (!found) return undefined;
    if (found.expiresAt > now) return found;
    this.drop(scope, found);
    return undefined;
  }

  remember(scope: string, entry: IdempotentEntry): void {
    const previous = this.entries.get(scope);
    if (previous) this.drop(scope, previous);
    const stored: Stored = { ...entry, chars: scope.length };
    this.entries.set(scope, stored);
    this.chars += stored.chars;
    this.trim();
    entry.result.then(
      (answer) => {
        if (this.entries.get(scope) !== stored) return;
        const added = jsonLength(answer);
        stored.chars += added;
        this.chars += added;
        this.trim();
      },
      () => {
        if (this.entries.get(scope) === stored) this.drop(scope, stored);
      },
    );
  }

  get size(): number {
    return this.entries.size;
  }

  /** Characters held: scopes and answers. */
  get heldChars(): number {
    return this.chars;
  }

  private trim(): void {
    for (const [scope, entry] of this.entries) {
      if (this.entries.size <= this.limits.maxEntries && this.chars <= this.limits.maxChars) return;
      this.drop(scope, entry);
    }
  }

  private drop(scope: string, entry: Stored): void {
    this.entries.delete(scope);
    this.chars -= entry.chars;
  }
}

function jsonLength(value: unknown): number {
  try {
    return JSON.stringify(value)?.length ?? 0;
  } catch {
    return 0;
  }
}
