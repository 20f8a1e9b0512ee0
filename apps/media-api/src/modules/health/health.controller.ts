import { Controller, Get, Logger } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService, type HealthIndicatorResult } from '@nestjs/terminus';
import { HealthIndicatorService } from '@nestjs/terminus';
import { ContentScanner, MediaRepository, MediaStorage } from '@jan/domain';
import { Public } from '../../auth/auth.guard';

@ApiTags('health')
@Public()
@Controller()
export class HealthController {
  private readonly logger = new Logger('readiness');

  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly repository: MediaRepository,
    private readonly storage: MediaStorage,
    private readonly scanner: ContentScanner,
  ) {}

  /** Liveness: the process answers. Never touches dependencies, so a slow database does not restart pods. */
  @Get('healthz')
  @ApiOkResponse({ description: 'The process answers', schema: { type: 'object', required: ['status'], properties: { status: { type: 'string', enum: ['ok'] } } } })
  healthz() {
    return { status: 'ok' };
  }

  /** Readiness: the database, the storage backend and (when one is configured) the scanner answer. */
  @Get('readyz')
  @HealthCheck()
  readyz() {
    const checks = [() => this.probe('database', () => this.repository.ping()), () => this.probe('storage', () => this.storage.ping())];
    if (this.scanner.name !== 'none') checks.push(() => this.probe('scanner', () => this.pingScanner()));
    return this.health.check(checks);
  }

  private async pingScanner(): Promise<void> {
    if (!(await this.scanner.ping())) throw new Error(`${this.scanner.name} did not answer its ping`);
  }

  private async probe(name: string, check: () => Promise<void>): Promise<HealthIndicatorResult> {
    const indicator = this.indicators.check(name);
    try {
      await withTimeout(check(), 2_000);
      return indicator.up();
    } catch (error) {
      // The probe is public: it says what failed, not where (a path, a host); the log has the rest.
      this.logger.warn({ err: error, check: name }, `readiness check ${name} failed`);
      return indicator.down({ message: publicReason(error) });
    }
  }
}

/** An error's code (ENOTDIR, ECONNREFUSED, database_unavailable…) or, failing that, a generic word. */
function publicReason(error: unknown): string {
  if (error instanceof TimeoutError) return error.message;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(code) ? code : 'unavailable';
}

class TimeoutError extends Error {}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new TimeoutError(`timed out after ${ms} ms`)), ms);
    }),
  ]);
}
