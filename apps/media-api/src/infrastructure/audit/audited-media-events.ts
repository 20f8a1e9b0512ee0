import { Logger, type OnModuleDestroy } from '@nestjs/common';
import { AuditTrail, MediaEvents, type MediaEvent } from '@jan/domain';
import { auditEntriesFor } from './audit-mapping';
import type { RequestContextStore } from './request-context';

/**
 * Passes every event on (metrics, logs) and appends its audit entries with the request's id,
 * trace id and client address. Appends run in the background: a failing audit store is logged,
 * never turned into a failed request. `flush()` waits for what is in flight (shutdown, tests).
 */
export class AuditedMediaEvents extends MediaEvents implements OnModuleDestroy {
  private readonly logger = new Logger('audit');
  private readonly pending = new Set<Promise<unknown>>();

  constructor(
    private readonly inner: MediaEvents,
    private readonly trail: AuditTrail,
    private readonly context: RequestContextStore,
  ) {
    super();
  }

  emit(event: MediaEvent): void {
    this.inner.emit(event);
    try {
      const request = this.context.current();
      // Event time, not insert time: writes run in the background and may land out of order.
      const occurredAt = new Date();
      for (const entry of auditEntriesFor(event)) {
        this.track(
          this.trail.append({
            ...entry,
            occurredAt,
            requestId: request?.requestId ?? null,
            traceId: request?.traceId ?? null,
            clientIp: request?.clientIp ?? null,
          }),
          entry.action,
        );
      }
    } catch (error) {
      this.logger.error({ err: error, event: event.type }, 'audit mapping failed');
    }
  }

  async flush(): Promise<void> {
    while (this.pending.size) await Promise.allSettled([...this.pending]);
  }

  async onModuleDestroy(): Promise<void> {
    await this.flush();
  }

  private track(write: Promise<unknown>, action: string): void {
    const tracked = write
      .catch((error: unknown) => this.logger.error({ err: error, action }, 'audit write failed'))
      .finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
  }
}
