/**
 * Coalesces concurrent lookups by key into one statement (the DataLoader pattern).
 *
 * Every `load` made in one turn of the event loop (the requests whose bytes arrived together)
 * joins one batch, and the batch runs when the loop reaches its check phase (`setImmediate`). A
 * caller alone waits for nothing but the end of that turn. On the request paths this turns one
 * round trip per request into one per turn: at concurrency 16 the resolve bench sent 0.18
 * statements per request, and the client side of a round trip (pool, protocol, two socket
 * syscalls and the wakeups) was the largest single cost of a resolve (docs/performance.md).
 *
 * Each caller gets back only the rows for the keys it asked for, in the order it asked, and a row
 * that goes to more than one caller is copied for each, so callers never share an object. Access
 * checks stay with the callers, who see exactly what a query of their own would have returned.
 *
 * Failures stay with whoever caused them: when a shared statement fails, each caller's keys are
 * asked again in a statement of their own, so one caller's bad key fails only that caller. Only a
 * failure that `sharedFailure` calls everyone's (the database did not answer) fails the whole
 * batch at once, since asking again would only repeat it.
 */
export class LookupBatcher<Key, Row> {
  private pending: Waiter<Key, Row>[] = [];
  private scheduled = false;

  constructor(private readonly options: LookupBatcherOptions<Key, Row>) {}

  load(keys: readonly Key[]): Promise<Row[]> {
    if (keys.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.pending.push({ keys, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const waiters = this.pending;
    this.pending = [];
    // Statements of at most maxKeys distinct keys; one caller's keys always share a statement.
    const maxKeys = this.options.maxKeys ?? 1000;
    let batch: Waiter<Key, Row>[] = [];
    let keys = new Set<Key>();
    for (const waiter of waiters) {
      const fresh = waiter.keys.filter((key) => !keys.has(key));
      if (batch.length > 0 && keys.size + fresh.length > maxKeys) {
        this.execute(batch, keys);
        batch = [];
        keys = new Set();
      }
      batch.push(waiter);
      for (const key of waiter.keys) keys.add(key);
    }
    if (batch.length > 0) this.execute(batch, keys);
  }

  private execute(waiters: Waiter<Key, Row>[], keys: Set<Key>): void {
    const { run, keyOf, copy } = this.options;
    // This runs in a setImmediate callback: a `run` that throws instead of rejecting must still
    // reach the callers, not the process.
    let statement: Promise<Row[]>;
    try {
      statement = run([...keys]);
    } catch (error) {
      statement = Promise.reject(error);
    }
    statement.then(
      (rows) => {
        const byKey = new Map(rows.map((row) => [keyOf(row), row]));
        const shared = waiters.length > 1;
        for (const waiter of waiters) {
          const mine: Row[] = [];
          for (const key of new Set(waiter.keys)) {
            const row = byKey.get(key);
            if (row !== undefined) mine.push(shared ? copy(row) : row);
          }
          waiter.resolve(mine);
        }
      },
      (error: unknown) => {
        if (waiters.length === 1 || this.options.sharedFailure?.(error)) {
          for (const waiter of waiters) waiter.reject(error);
          return;
        }
        for (const waiter of waiters) this.execute([waiter], new Set(waiter.keys));
      },
    );
  }
}

export interface LookupBatcherOptions<Key, Row> {
  /** Runs one statement for these distinct keys; rows for unknown keys are simply absent. */
  readonly run: (keys: Key[]) => Promise<Row[]>;
  readonly keyOf: (row: Row) => Key;
  /** A deep enough copy that two callers can never reach the same mutable object. */
  readonly copy: (row: Row) => Row;
  /** True for a failure every caller would get alone (the database is down): no retry per caller. */
  readonly sharedFailure?: (error: unknown) => boolean;
  /** Most distinct keys per statement (default 1000). */
  readonly maxKeys?: number;
}

interface Waiter<Key, Row> {
  readonly keys: readonly Key[];
  resolve(rows: Row[]): void;
  reject(error: unknown): void;
}
