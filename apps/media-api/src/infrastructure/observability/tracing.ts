import type { Span } from '@opentelemetry/api';
import type { FastifyInstance } from 'fastify';

/** Where spans go: OTLP over HTTP (JSON), from the standard OpenTelemetry variables. */
export interface TracingSettings {
  tracesUrl: string;
  serviceName: string;
}

export interface Tracing {
  /** Exports what is buffered, then unregisters the SDK. */
  shutdown(): Promise<void>;
}

/**
 * Tracing is on when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the full URL) or
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (a base URL, `/v1/traces` appended) is set, unless
 * `OTEL_TRACES_EXPORTER=none` or `OTEL_SDK_DISABLED=true`. Off by default: the SDK is not even loaded.
 */
export function tracingSettingsFrom(env: Record<string, string | undefined>): TracingSettings | null {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return null;
  if ((env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() ?? 'otlp') !== 'otlp') return null;
  const full = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  const tracesUrl = full || (base ? `${base.replace(/\/+$/, '')}/v1/traces` : '');
  if (!tracesUrl) return null;
  return { tracesUrl, serviceName: env.OTEL_SERVICE_NAME?.trim() || 'jan-media-api' };
}

const UNTRACED = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * Starts the OpenTelemetry SDK (`@opentelemetry/sdk-node`, no auto-instrumentation) and records
 * one server span per request, continuing the caller's W3C `traceparent` — so a chat completion
 * traced in llm-api shows the time spent here, under the same trace. Probes and metrics scrapes
 * are not traced. The span carries the route (never the query string: signed URLs are
 * credentials), the status and the request id.
 */
export async function startTracing(fastify: FastifyInstance, settings: TracingSettings): Promise<Tracing> {
  const api = await import('@opentelemetry/api');
  const { NodeSDK } = await import('@opentelemetry/sdk-node');
  const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
  const sdk = new NodeSDK({
    serviceName: settings.serviceName,
    traceExporter: new OTLPTraceExporter({ url: settings.tracesUrl }),
    instrumentations: [],
    resourceDetectors: [],
  });
  sdk.start();
  const tracer = api.trace.getTracer('jan-media-api');
  const spans = new WeakMap<object, Span>();

  fastify.addHook('onRequest', (request, _reply, done) => {
    const path = request.url.split('?')[0]!;
    if (!UNTRACED.has(path)) {
      const parent = api.propagation.extract(api.ROOT_CONTEXT, request.headers);
      const route = request.routeOptions.url;
      const span = tracer.startSpan(
        route ? `${request.method} ${route}` : request.method,
        {
          kind: api.SpanKind.SERVER,
          attributes: { 'http.request.method': request.method, 'url.path': path, ...(route ? { 'http.route': route } : {}), 'jan.request_id': String(request.id) },
        },
        parent,
      );
      spans.set(request, span);
    }
    done();
  });
  fastify.addHook('onResponse', (request, reply, done) => {
    const span = spans.get(request);
    if (span) {
      span.setAttribute('http.response.status_code', reply.statusCode);
      if (reply.statusCode >= 500) span.setStatus({ code: api.SpanStatusCode.ERROR });
      span.end();
    }
    done();
  });

  return {
    async shutdown() {
      await sdk.shutdown();
      api.trace.disable();
      api.propagation.disable();
      api.context.disable();
    },
  };
}
