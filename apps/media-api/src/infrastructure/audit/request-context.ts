import { AsyncLocalStorage } from 'node:async_hooks';
import type { FastifyInstance } from 'fastify';

/** What the audit trail records about the request an event happened in. */
export interface RequestContext {
  requestId: string;
  clientIp: string | null;
  /** W3C trace id from `traceparent`, when the caller sent a valid one. */
  traceId: string | null;
}

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/**
 * The current request's context, carried through the domain's calls by AsyncLocalStorage so that
 * use cases stay unaware of HTTP. Outside a request (retention sweeper) there is none.
 */
export class RequestContextStore {
  private readonly storage = new AsyncLocalStorage<RequestContext>();

  current(): RequestContext | undefined {
    return this.storage.getStore();
  }

  run<T>(context: RequestContext, fn: () => T): T {
    return this.storage.run(context, fn);
  }

  /** Enters the context in `onRequest`, so every later hook and the handler run inside it. */
  register(fastify: FastifyInstance): void {
    fastify.addHook('onRequest', (request, _reply, done) => {
      const context: RequestContext = {
        requestId: String(request.id),
        clientIp: request.ip || null,
        traceId: traceIdOf(request.headers.traceparent),
      };
      this.storage.run(context, done);
    });
  }
}

export function traceIdOf(header: string | string[] | undefined): string | null {
  const value = Array.isArray(header) ? header[0] : header;
  const match = value ? TRACEPARENT.exec(value.trim().toLowerCase()) : null;
  if (!match || /^0+$/.test(match[1])) return null;
  return match[1];
}
