import { Transform, pipeline, type Readable } from 'node:stream';

/**
 * A budget of request-body bytes held in memory at once. JSON bodies (a 20 MiB image is a 27 MiB
 * data URL) are buffered and parsed whole; without a bound, 16 concurrent large uploads peak above
 * a gigabyte. Large bodies wait for budget before they are read, in arrival order; small ones never
 * wait. A body larger than the whole budget takes all of it.
 */
export class BodyMemoryBudget {
  private available: number;
  private readonly waiting: { bytes: number; grant: () => void }[] = [];

  constructor(
    readonly capacity: number,
    /** Bodies up to this size skip the budget (resolve payloads, small images). */
    readonly smallBodyBytes = 1024 * 1024,
  ) {
    this.available = capacity;
  }

  /** Whether a body of this size must wait for budget at all (small ones never do). */
  governs(declaredBytes: number): boolean {
    return this.capacity > 0 && declaredBytes > this.smallBodyBytes;
  }

  /** Waits until `bytes` fit, then returns an idempotent release. */
  async acquire(declaredBytes: number): Promise<() => void> {
    if (!this.governs(declaredBytes)) return () => undefined;
    const bytes = Math.min(declaredBytes, this.capacity);
    if (this.waiting.length === 0 && bytes <= this.available) {
      this.available -= bytes;
    } else {
      await new Promise<void>((grant) => this.waiting.push({ bytes, grant }));
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.available += bytes;
      this.drain();
    };
  }

  get inUse(): number {
    return this.capacity - this.available;
  }

  private drain(): void {
    while (this.waiting.length && this.waiting[0].bytes <= this.available) {
      const next = this.waiting.shift()!;
      this.available -= next.bytes;
      next.grant();
    }
  }
}

/**
 * A JSON body of unknown length (chunked): its first `smallBodyBytes` pass without budget, as a
 * small declared body's would; past them the stream stops reading until `maxBytes` (the largest
 * body the server accepts) fits in the budget, and hands the release to `granted`. Reserving that
 * before reading anything let one stalled chunked request hold the whole budget and stall every
 * other chunked request behind it, a 19-byte resolve included.
 */
export function meterUnknownLength(payload: Readable, budget: BodyMemoryBudget, maxBytes: number, granted: (release: () => void) => void): Readable {
  let seen = 0;
  let waited = false;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      seen += chunk.length;
      if (waited || !budget.governs(seen)) return callback(null, chunk);
      waited = true;
      budget.acquire(maxBytes).then((release) => {
        granted(release);
        callback(null, chunk);
      }, callback);
    },
  });
  // The client's errors (an abort) reach the parser through the meter.
  pipeline(payload, meter, () => undefined);
  return meter;
}
