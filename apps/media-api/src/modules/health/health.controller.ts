import { Controller, Get, Logger, ServiceUnavailableException } from '@nestjs/common';
import { ApiOkResponse, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService, type HealthIndicatorResult } from '@nestjs/terminus';
import { HealthIndicatorService } from '@nestjs/terminus';
import { ContentScanner, MediaRepository, MediaStorage } from '@jan/domain';
import { Public } from '../../auth/auth.guard';
import { Draining } from '../../http/draining';

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
    private readonly draining: Draining,
  ) {}

  /** Liveness: the process answers. Never touches dependencies, so a slow database does not restart pods. */
  @Get('healthz')
  @ApiOkResponse({ description: 'The process answers', schema: { type: 'object', required: ['status'], properties: { status: { type: 'string', enum: ['ok'] } } } })
  healthz() {
    return { status: 'ok' };
  }

  /**
   * Readiness: the database, the storage backend and (when one is configured) the scanner answer.
   * From the start of a shutdown, 503 `shutting_down` without checking anything, so the pod leaves
   * the rotation while it still accepts connections (`MEDIA_SHUTDOWN_DELAY`).
   */
  @Get('readyz')
  // Terminus would document the route itself by loading @nestjs/swagger with its own require: in the
  // bundle that is a second copy of swagger and Nest, ~0.5 s of every start (docs/performance.md).
  @HealthCheck({ noCache: true, swaggerDocumentation: false })
  @ApiOkResponse({ description: 'Every check answered', schema: readinessSchema(['ok']) })
  @ApiServiceUnavailableResponse({
    description: 'A check failed, or the process is shutting down',
    schema: readinessSchema(['error', 'shutting_down']),
    headers: { 'Retry-After': { description: 'Seconds to wait before asking again (always 2; Kubernetes ignores it, other clients may not)', schema: { type: 'integer' } } },
  })
  readyz() {
    if (this.draining.active) throw new ServiceUnavailableException({ status: 'shutting_down', info: {}, error: {}, details: {} });
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

/** Terminus' answer: `info` lists the checks that are up, `error` those that are down, `details` all of them. */
function readinessSchema(statuses: string[]) {
  const checks = {
    type: 'object',
    description: 'By check: database, storage, and scanner when one is configured',
    additionalProperties: {
      type: 'object',
      required: ['status'],
      properties: { status: { type: 'string', enum: ['up', 'down'] }, message: { type: 'string' } },
    },
  };
  return {
    type: 'object',
    required: ['status'],
    properties: { status: { type: 'string', enum: statuses }, info: { ...checks, nullable: true }, error: { ...checks, nullable: true }, details: checks },
  };
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
