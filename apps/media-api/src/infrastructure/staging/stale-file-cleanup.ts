import { Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import type { HttpAdapterHost } from '@nestjs/core';
import type { Clock, MediaStorage, UploadStaging } from '@jan/domain';
import { LocalDiskMediaStorage, STALE_TEMPORARY_AGE_MS } from '@jan/storage-local';
import { requestTimeoutCheckMs } from '../../http/request-timeout';
import { TempFileUploadStaging } from './temp-file-upload-staging';

export interface StaleFileCleanupOptions {
  /** How often to run again after start-up (the retention sweep's interval); 0 runs at start-up only. */
  intervalSeconds: number;
  /**
   * `MEDIA_REQUEST_TIMEOUT` (0 = no limit): a request's body may pause for up to that long, and
   * for up to one of Node's checks for expired requests past it, so a timeout near or above
   * `STALE_TEMPORARY_AGE_MS` raises the age a file must reach to the timeout plus that check.
   */
  requestTimeoutMs: number;
}

/**
 * Removes the temporary files that writes cut short left on this machine, by a crash (kill -9, an
 * OOM kill, a power cut) or by a failure whose own clean-up failed too (a disk error mid-write):
 * the local backend's `<key>.<uuid>.partial` files and readiness probes, and staging's spool files
 * (`upload-<uuid>`). None of them names an object; they only take disk space. Only files untouched
 * for `STALE_TEMPORARY_AGE_MS` (or the request timeout, when longer) go, so a write in flight, in
 * this process or in another sharing the directory, is never touched. Runs in the background once
 * the server listens (a large objects directory costs its scan, never the time to /readyz), then
 * every `intervalSeconds`; a run never starts while the previous one is still going.
 */
export class StaleFileCleanup implements OnApplicationBootstrap, OnModuleDestroy {
  /** The start-up run logs as it always did; later runs under their own name. */
  private readonly startupLogger = new Logger('startup');
  private readonly logger = new Logger('stale-files');
  private readonly maxAgeMs: number;
  private readonly stopping = new AbortController();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private started = false;
  private runs = 0;

  constructor(
    private readonly storage: MediaStorage,
    private readonly staging: UploadStaging,
    private readonly clock: Clock,
    private readonly options: StaleFileCleanupOptions,
    private readonly adapterHost?: HttpAdapterHost,
  ) {
    const longestRequestMs = options.requestTimeoutMs > 0 ? options.requestTimeoutMs + requestTimeoutCheckMs(options.requestTimeoutMs) : 0;
    this.maxAgeMs = Math.max(STALE_TEMPORARY_AGE_MS, longestRequestMs);
  }

  onApplicationBootstrap(): void {
    const server = this.adapterHost?.httpAdapter?.getHttpServer() as { listening?: boolean; once?(event: 'listening', listener: () => void): unknown } | undefined;
    if (server?.once && !server.listening) server.once('listening', () => this.start());
    else this.start();
  }

  /** Stops the schedule, and a run in progress before its next file (as the retention sweep stops). */
  async onModuleDestroy(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.stopping.abort();
    await this.running;
  }

  /** The run in progress (resolved when none is); for tests. */
  done(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  /** One run; a call while one is going shares it instead of starting a second scan. */
  run(): Promise<void> {
    this.running ??= this.runOnce().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private start(): void {
    if (this.started || this.stopping.signal.aborted) return;
    this.started = true;
    void this.run();
    if (this.options.intervalSeconds <= 0) return;
    this.timer = setInterval(() => void this.run(), this.options.intervalSeconds * 1000);
    this.timer.unref();
  }

  private async runOnce(): Promise<void> {
    const logger = this.runs++ === 0 ? this.startupLogger : this.logger;
    const event = logger === this.startupLogger ? 'startup.stale_files_removed' : 'stale_files.removed';
    const olderThan = new Date(this.clock.now().getTime() - this.maxAgeMs);
    const signal = this.stopping.signal;
    try {
      const partial = this.storage instanceof LocalDiskMediaStorage ? await this.storage.removeStaleTemporaries(olderThan, signal) : 0;
      const spool = this.staging instanceof TempFileUploadStaging ? await this.staging.removeStale(olderThan, signal) : 0;
      if (partial || spool) logger.log({ event, partial, spool });
    } catch (error) {
      logger.warn({ err: error }, 'could not remove stale temporary files');
    }
  }
}
