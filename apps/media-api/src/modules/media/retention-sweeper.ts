import { Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import type { AuditRetention, ManageMedia } from '@jan/domain';

/** Per sweep: a storage that refuses every delete must not flood the log. */
const MAX_FAILURES_LOGGED = 20;

/**
 * Deletes expired objects (past retention, or pending past their deadline: abandoned direct
 * uploads and ingests a crash cut short) on an interval, then audit
 * entries past their own retention. Every replica may run it: each row is claimed in the database
 * before its object goes (`ManageMedia.purgeExpired`), and a lost race only finds nothing to claim.
 */
export class RetentionSweeper implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('retention');
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private readonly stopping = new AbortController();

  constructor(
    private readonly manage: ManageMedia,
    private readonly intervalSeconds: number,
    private readonly audit?: AuditRetention,
  ) {}

  onApplicationBootstrap(): void {
    if (this.intervalSeconds <= 0) return;
    this.timer = setInterval(() => void this.sweep(), this.intervalSeconds * 1000);
    this.timer.unref();
  }

  /**
   * Stops a running sweep after the object it is removing. Nest runs this before it stops the
   * HTTP server: waiting for a whole sweep (up to 10,000 removals) kept the server accepting
   * connections for that long after SIGTERM.
   */
  async onModuleDestroy(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.stopping.abort();
    await this.running;
  }

  /** One sweep; overlapping calls share the running one. */
  sweep(): Promise<void> {
    this.running ??= this.sweepOnce().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async sweepOnce(): Promise<void> {
    try {
      const { removed, failed } = await this.manage.purgeExpired(undefined, undefined, { signal: this.stopping.signal });
      if (removed || failed.length) this.logger.log({ event: 'retention.swept', removed, failed: failed.length });
      // Each is skipped and tried again once per sweep; the rest of the sweep went on without it.
      for (const failure of failed.slice(0, MAX_FAILURES_LOGGED)) {
        this.logger.warn({ event: 'retention.delete_failed', media_id: failure.id, code: failure.code, err: failure.error }, 'retention could not delete an object');
      }
    } catch (error) {
      this.logger.error({ err: error }, 'retention sweep failed');
    }
    if (!this.audit || this.stopping.signal.aborted) return;
    try {
      const pruned = await this.audit.prune();
      if (pruned) this.logger.log({ event: 'audit.pruned', pruned, retention_days: this.audit.retentionDays });
    } catch (error) {
      this.logger.error({ err: error }, 'audit retention failed');
    }
  }
}
