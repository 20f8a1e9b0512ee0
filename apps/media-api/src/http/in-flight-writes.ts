import { Injectable, UseInterceptors, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { finalize, type Observable } from 'rxjs';

/**
 * Counts the writing route handlers that are running, whether or not their connection is still
 * open.
 *
 * A graceful shutdown closes the connections still open when `MEDIA_SHUTDOWN_GRACE` ends, and the
 * server then counts as closed while their handlers go on (storing an object, inserting its row,
 * removing a temp file, emitting audit events). `settled()` lets the shutdown wait for them
 * before it flushes the audit trail and closes the database, so a cut request leaves an object
 * with its row or nothing, and no temp file.
 */
export class InFlightWrites {
  private running = 0;
  private waiters: Array<() => void> = [];

  enter(): void {
    this.running++;
  }

  leave(): void {
    if (--this.running > 0) return;
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  /** Resolves `true` once no writing handler runs, or `false` after `timeoutMs`. */
  settled(timeoutMs: number): Promise<boolean> {
    if (this.running === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const waiter = () => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve(false);
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }
}

@Injectable()
export class InFlightWritesInterceptor implements NestInterceptor {
  constructor(private readonly writes: InFlightWrites) {}

  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    this.writes.enter();
    return next.handle().pipe(finalize(() => this.writes.leave()));
  }
}

/**
 * Routes that write to storage or the database: counted by `InFlightWrites`. Bound per route, as
 * `Idempotent` is, rather than globally: a global interceptor puts every request (resolve
 * included) through rxjs.
 */
export const Writes = () => UseInterceptors(InFlightWritesInterceptor);
