import { LookupBatcher } from './lookup-batcher';

/**
 * Coalesces concurrent single-row writes into one statement, as `LookupBatcher` does for lookups:
 * the writes asked for in one turn of the event loop go to the database as one multi-row
 * statement, so they cost one round trip and one commit between them instead of one each. Under
 * concurrent uploads each one's insert and its `markReady` are such writes (docs/performance.md).
 *
 * Each write is its caller's own row (keyed by the row's id), and a caller gets back the row its
 * write returned, or null when the statement's conditions left it out (a conflict, a claimed row).
 * A shared statement is all or nothing: when it fails, nothing of it was written, and each write
 * is made again in a statement of its own (`LookupBatcher`'s rule), so one caller's failing row
 * (a unique violation, a deadlock with a deleter) fails only that caller. A second write of a key
 * that is already waiting or running does not join: it runs alone, so two writes of one row are
 * never merged into one.
 */
export class WriteBatcher<Input, Row> {
  private readonly writing = new Map<string, Input>();
  private readonly batcher: LookupBatcher<string, Row>;

  constructor(private readonly options: WriteBatcherOptions<Input, Row>) {
    this.batcher = new LookupBatcher<string, Row>({
      run: (keys) => this.options.run(keys.map((key) => this.writing.get(key)!)),
      keyOf: options.keyOfRow,
      // Each row is the one caller's whose key it has: no two callers ever share it.
      copy: (row) => row,
      sharedFailure: options.sharedFailure,
      maxKeys: options.maxRows ?? 100,
    });
  }

  async write(input: Input): Promise<Row | null> {
    const key = this.options.keyOfInput(input);
    if (this.writing.has(key)) {
      const [row] = await this.options.run([input]);
      return row ?? null;
    }
    this.writing.set(key, input);
    try {
      const [row] = await this.batcher.load([key]);
      return row ?? null;
    } finally {
      this.writing.delete(key);
    }
  }
}

export interface WriteBatcherOptions<Input, Row> {
  /** One statement writing all of these rows (a single one when alone); returns the rows written. */
  readonly run: (inputs: Input[]) => Promise<Row[]>;
  readonly keyOfInput: (input: Input) => string;
  readonly keyOfRow: (row: Row) => string;
  /** True for a failure every caller would get alone (the database is down): no retry per caller. */
  readonly sharedFailure?: (error: unknown) => boolean;
  /** Most rows per statement (default 100). */
  readonly maxRows?: number;
}
