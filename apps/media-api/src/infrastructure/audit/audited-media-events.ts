import { Logger, type OnApplicationShutdown } from '@nestjs/common';
import { AuditTrail, MediaEvents, type AuditEntryInput, type MediaEvent } from '@jan/domain';
import { auditEntriesFor } from './audit-mapping';
import type { RequestContextStore } from './request-context';

export interface AuditBatchingOptions {
  /** How long the first queued entry waits for others to join its write. */
  lingerMs?: number;
  /** Entries per write; a full batch is written at once. */
  maxBatch?: number;
  /** Entries held while the store is slow or down; more are dropped (and logged). */
  maxQueued?: number;
}

/**
 * Passes every event on (metrics, logs) and appends its audit entries with the request's id,
 * trace id and client address.
 *
 * Appends run in the background, batched: entries queue for up to `lingerMs` (or until
 * `maxBatch` are waiting) and go to the store in one multi-row write, one write at a time;
 * whatever queues during a write goes in the next one (group commit). Under load that is one
 * statement and one commit for many requests instead of one per request. A failing store is
 * logged, never turned into a failed request. `flush()` writes everything queued and waits
 * (shutdown, tests).
 */
export class AuditedMediaEvents extends MediaEvents implements OnApplicationShutdown {
  private readonly logger = new Logger('audit');
  private readonly lingerMs: number;
  private readonly maxBatch: number;
  private readonly maxQueued: number;
  private queue: AuditEntryInput[] = [];
  private writing: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Entries dropped because the queue was full, since the last time that was logged. */
  private dropped = 0;

  constructor(
    private readonly inner: MediaEvents,
    private readonly trail: AuditTrail,
    private readonly context: RequestContextStore,
    options: AuditBatchingOptions = {},
  ) {
    super();
    this.lingerMs = options.lingerMs ?? 5;
    this.maxBatch = options.maxBatch ?? 200;
    this.maxQueued = options.maxQueued ?? 10_000;
  }

  emit(event: MediaEvent): void {
    this.inner.emit(event);
    try {
      const request = this.context.contextOf(event.principal);
      // Event time, not insert time: entries are written in batches, later than they happen.
      const occurredAt = new Date();
      for (const entry of auditEntriesFor(event)) {
        this.enqueue({
          ...entry,
          occurredAt,
          requestId: request?.requestId ?? null,
          traceId: request?.traceId ?? null,
          clientIp: request?.clientIp ?? null,
        });
      }
    } catch (error) {
      this.logger.error({ err: error, event: event.type }, 'audit mapping failed');
    }
  }

  /** Writes everything queued so far and waits for it. */
  async flush(): Promise<void> {
    for (;;) {
      this.writeNext();
      if (!this.writing) return;
      await this.writing;
    }
  }

  /**
   * After the HTTP server has closed, not on module destroy: Nest runs the destroy hooks before it
   * stops the server, so the entries of requests that finish during a graceful shutdown would
   * queue after that flush and be lost when the pool closes and the process exits.
   */
  async onApplicationShutdown(): Promise<void> {
    await this.flush();
  }

  private enqueue(entry: AuditEntryInput): void {
    if (this.queue.length >= this.maxQueued) {
      if (this.dropped++ === 0) this.logger.error({ max_queued: this.maxQueued }, 'audit queue full: dropping entries until the store catches up');
      return;
    }
    this.queue.push(entry);
    if (this.queue.length >= this.maxBatch) this.writeNext();
    else if (!this.timer && !this.writing) {
      this.timer = setTimeout(() => this.writeNext(), this.lingerMs);
      this.timer.unref();
    }
  }

  /** Starts the next write unless one is running; the running one starts the next when it ends. */
  private writeNext(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.writing || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.maxBatch);
    if (this.dropped) {
      this.logger.error({ dropped: this.dropped }, 'audit entries were dropped while the queue was full');
      this.dropped = 0;
    }
    this.writing = this.trail
      .appendMany(batch)
      .catch((error: unknown) => {
        this.logger.error({ err: error, entries: batch.length, actions: [...new Set(batch.map((e) => e.action))] }, 'audit write failed');
      })
      .finally(() => {
        this.writing = null;
        this.writeNext();
      });
  }
}
