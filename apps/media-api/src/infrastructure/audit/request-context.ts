import type { FastifyRequest } from 'fastify';

/** What the audit trail records about the request an event happened in. */
export interface RequestContext {
  requestId: string;
  clientIp: string | null;
  /** W3C trace id from `traceparent`, when the caller sent a valid one. */
  traceId: string | null;
}

/** W3C Trace Context, read as OpenTelemetry's propagator reads it: lowercase hex only. */
const TRACEPARENT = /^\s?([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?\s?$/;

/**
 * The request an event happened in, found through the principal that caused it. The auth guard
 * binds each request's principal (a fresh object per request) to that request's context here, and
 * every domain event carries its principal, so the audit trail and the event log can name the
 * request without use cases knowing about HTTP.
 *
 * This used to be an AsyncLocalStorage. On Node 20 that runs async hooks on every promise of every
 * request: 3-4% of the resolve profile (docs/performance.md).
 * Outside a request (the retention sweeper) there is no principal and so no context.
 */
export class RequestContextStore {
  private readonly byPrincipal = new WeakMap<object, RequestContext>();

  bind(principal: object, context: RequestContext): void {
    this.byPrincipal.set(principal, context);
  }

  contextOf(principal: object | null | undefined): RequestContext | undefined {
    return principal ? this.byPrincipal.get(principal) : undefined;
  }
}

/** What a request says about itself: its id, the client's address and the caller's trace id. */
export function requestContextOf(request: Pick<FastifyRequest, 'id' | 'ip' | 'headers'>): RequestContext {
  return {
    requestId: String(request.id),
    clientIp: request.ip || null,
    traceId: traceIdOf(request.headers.traceparent),
  };
}

export function traceIdOf(header: string | string[] | undefined): string | null {
  const value = Array.isArray(header) ? header[0] : header;
  // The same header the span takes as its parent, or none: logs and audit rows must name the
  // trace the exported spans are in. Version ff, version 00 with more fields, and all-zero ids
  // are invalid (W3C Trace Context §3.2).
  const match = value ? TRACEPARENT.exec(value) : null;
  if (!match || match[1] === 'ff' || (match[1] === '00' && match[4] !== undefined)) return null;
  if (/^0+$/.test(match[2]!) || /^0+$/.test(match[3]!)) return null;
  return match[2]!;
}
