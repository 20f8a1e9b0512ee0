import { Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import type { HttpAdapterHost } from '@nestjs/core';
import type { Clock, MediaStorage, UploadStaging } from '@jan/domain';
import { LocalDiskMediaStorage, STALE_TEMPORARY_AGE_MS } from '@jan/storage-local';
import { TempFileUploadStaging } from './temp-file-upload-staging';

/**
 * At start-up, removes the temporary files that writes cut short by a crash (kill -9, an OOM kill,
 * a power cut) left on this machine: the local backend's `<key>.<uuid>.partial` files and
 * readiness probes, and staging's spool files (`upload-<uuid>`). None of them names an object;
 * they only take disk space. Only files untouched for `STALE_TEMPORARY_AGE_MS` go, so a write in
 * flight in another process sharing the directory is never touched. Runs in the background once
 * the server listens: a large objects directory costs its scan, never the time to /readyz.
 */
export class StaleFileCleanup implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger('startup');
  private running: Promise<void> | null = null;

  constructor(
    private readonly storage: MediaStorage,
    private readonly staging: UploadStaging,
    private readonly clock: Clock,
    private readonly adapterHost?: HttpAdapterHost,
  ) {}

  onApplicationBootstrap(): void {
    const server = this.adapterHost?.httpAdapter?.getHttpServer() as { listening?: boolean; once?(event: 'listening', listener: () => void): unknown } | undefined;
    if (server?.once && !server.listening) server.once('listening', () => this.start());
    else this.start();
  }

  /** Shutting down waits for a clean-up in progress (each step is one file-system call). */
  async onModuleDestroy(): Promise<void> {
    await this.running;
  }

  /** The clean-up started at boot (resolved when there was nothing to do); for tests. */
  done(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  private start(): void {
    this.running ??= this.run();
  }

  private async run(): Promise<void> {
    const olderThan = new Date(this.clock.now().getTime() - STALE_TEMPORARY_AGE_MS);
    try {
      const partial = this.storage instanceof LocalDiskMediaStorage ? await this.storage.removeStaleTemporaries(olderThan) : 0;
      const spool = this.staging instanceof TempFileUploadStaging ? await this.staging.removeStale(olderThan) : 0;
      if (partial || spool) this.logger.log({ event: 'startup.stale_files_removed', partial, spool });
    } catch (error) {
      this.logger.warn({ err: error }, 'could not remove stale temporary files');
    }
  }
}
