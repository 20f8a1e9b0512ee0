import { createRequire } from 'node:module';
import { join } from 'node:path';

/** Writes trace headers (`traceparent`, `tracestate`, …) into an outgoing request's header map. */
export type TracePropagator = (carrier: Record<string, string>) => void;

/** The slice of `@opentelemetry/api` this SDK touches; typed locally so the package stays optional. */
interface OtelContext {
  getValue(key: symbol): unknown;
}
interface OtelSpanContext {
  traceId: string;
  spanId: string;
  traceFlags: number;
  traceState?: { serialize(): string };
}
interface OtelApiModule {
  context: { active(): OtelContext };
  propagation: { inject(context: OtelContext, carrier: Record<string, string>): void };
  trace: { getSpanContext(context: OtelContext): OtelSpanContext | undefined };
}
interface OtelGlobalRegistry {
  context?: { active(): OtelContext };
  propagation?: {
    inject(context: OtelContext, carrier: Record<string, string>, setter: unknown): void;
  };
}

// The API keeps its registrations on globalThis under this symbol (one per major version), so any
// copy of @opentelemetry/api in the process — even one this package cannot resolve — is visible here.
const OTEL_GLOBAL = Symbol.for('opentelemetry.js.api.1');
const SPAN_KEY = Symbol.for('OpenTelemetry Context Key SPAN');
const SETTER = {
  set(carrier: Record<string, string>, key: string, value: string): void {
    carrier[key] = value;
  },
};

let cachedModule: OtelApiModule | null | undefined;

function loadOtelModule(): OtelApiModule | null {
  if (cachedModule !== undefined) return cachedModule;
  cachedModule = null;
  const attempts: Array<() => unknown> = [];
  // CommonJS build: resolve next to this package. The ESM build has no `require`; there the
  // application's own node_modules (from the working directory) is the natural place to look.
  if (typeof require === 'function') attempts.push(() => require('@opentelemetry/api'));
  attempts.push(() => createRequire(join(process.cwd(), 'noop.js'))('@opentelemetry/api'));
  for (const attempt of attempts) {
    try {
      const api = attempt() as Partial<OtelApiModule> | undefined;
      if (api?.context && api.propagation && api.trace) {
        cachedModule = api as OtelApiModule;
        break;
      }
    } catch {
      // Not installed: tracing is optional.
    }
  }
  return cachedModule;
}

function formatTraceparent(span: OtelSpanContext): string | undefined {
  const valid =
    /^[0-9a-f]{32}$/.test(span.traceId) &&
    !/^0+$/.test(span.traceId) &&
    /^[0-9a-f]{16}$/.test(span.spanId) &&
    !/^0+$/.test(span.spanId);
  if (!valid) return undefined;
  return `00-${span.traceId}-${span.spanId}-${(span.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
}

function fromSpanContext(span: OtelSpanContext | undefined, carrier: Record<string, string>): void {
  if (!span) return;
  const traceparent = formatTraceparent(span);
  if (!traceparent) return;
  carrier['traceparent'] = traceparent;
  const state = span.traceState?.serialize();
  if (state) carrier['tracestate'] = state;
}

/**
 * Injects the active OpenTelemetry context, if the application uses OpenTelemetry. Uses the
 * registered global propagator when there is one, and otherwise formats a W3C `traceparent`
 * from the active span so a bare API + context manager setup still propagates.
 */
export const openTelemetryPropagator: TracePropagator = (carrier) => {
  try {
    const api = loadOtelModule();
    if (api) {
      const active = api.context.active();
      api.propagation.inject(active, carrier);
      if (!carrier['traceparent']) fromSpanContext(api.trace.getSpanContext(active), carrier);
      return;
    }
    const registry = (globalThis as Record<symbol, OtelGlobalRegistry | undefined>)[OTEL_GLOBAL];
    const active = registry?.context?.active();
    if (!registry || !active) return;
    registry.propagation?.inject(active, carrier, SETTER);
    if (!carrier['traceparent']) {
      const span = active.getValue(SPAN_KEY) as { spanContext?: () => OtelSpanContext } | undefined;
      fromSpanContext(span?.spanContext?.(), carrier);
    }
  } catch {
    // Tracing must never fail a request.
  }
};

/** Test seam: forget the cached module lookup. */
export function resetOpenTelemetryCache(): void {
  cachedModule = undefined;
}
