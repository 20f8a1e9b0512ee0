import { Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import type { ManageMedia } from '@jan/domain';

/**
 * Deletes expired objects (retention and abandoned direct uploads) on an interval. Every replica
 * may run it: rows are deleted one by one and a lost race only finds nothing to delete.
 */
export class RetentionSweeper implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('retention');
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly manage: ManageMedia,
    private readonly intervalSeconds: number,
  ) {}

  onApplicationBootstrap(): void {
    if (this.intervalSeconds <= 0) return;
    this.timer = setInterval(() => void this.sweep(), this.intervalSeconds * 1000);
    this.timer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /** One sweep; overlapping calls share the running one. */
  sweep(): Promise<void> {
    this.running ??= this.manage
      .purgeExpired()
      .then((removed) => {
        if (removed) this.logger.log({ event: 'retention.swept', removed });
      })
      .catch((error: unknown) => this.logger.error({ err: error }, 'retention sweep failed'))
      .finally(() => {
        this.running = null;
      });
    return this.running;
  }
}
