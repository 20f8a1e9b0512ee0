import { AsyncLocalStorage } from 'node:async_hooks';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { MediaClient, type MediaClientOptions } from '../client';
import { BASE_URL, fakeFetch, json, MEDIA_OBJECT } from '../testing/fake-fetch';
import { openTelemetryPropagator, resetOpenTelemetryCache } from './tracing';

// This package deliberately does not depend on @opentelemetry/api; the service app does, so the
// real API is loaded from there to prove interop with whatever copy the application registers.
// (tsconfig.json maps the types to the same place for the typecheck.)
type OtelApi = typeof import('@opentelemetry/api');
const otel = createRequire(join(__dirname, '../../../../apps/media-api/package.json'))('@opentelemetry/api') as OtelApi;

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN_ID = '00f067aa0ba902b7';

class AsyncLocalContextManager {
  private readonly storage = new AsyncLocalStorage<import('@opentelemetry/api').Context>();
  active() {
    return this.storage.getStore() ?? otel.ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(
    context: import('@opentelemetry/api').Context,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return this.storage.run(context, () => fn.call(thisArg, ...args));
  }
  bind<T>(_context: import('@opentelemetry/api').Context, target: T): T {
    return target;
  }
  enable() {
    return this;
  }
  disable() {
    this.storage.disable();
    return this;
  }
}

function setup(propagator?: MediaClientOptions['propagator']) {
  const fake = fakeFetch(() => json(200, MEDIA_OBJECT));
  const client = new MediaClient({ baseURL: BASE_URL, fetch: fake.fetch, env: {}, ...(propagator !== undefined ? { propagator } : {}) });
  return { client, calls: fake.calls };
}

function inSpan<T>(fn: () => Promise<T>, traceFlags = otel.TraceFlags.SAMPLED): Promise<T> {
  const span = otel.trace.wrapSpanContext({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags });
  return otel.context.with(otel.trace.setSpan(otel.context.active(), span), fn);
}

describe('trace propagation', () => {
  beforeEach(() => resetOpenTelemetryCache());
  afterEach(() => {
    otel.context.disable();
    otel.propagation.disable();
  });

  it('sends an explicit per-call traceparent', async () => {
    const { client, calls } = setup(false);
    const traceparent = `00-${TRACE_ID}-${SPAN_ID}-01`;
    await client.media.metadata(MEDIA_OBJECT.id, { traceparent });
    expect(calls[0]!.headers.get('traceparent')).toBe(traceparent);
  });

  it('uses a propagator hook, with the per-call traceparent winning', async () => {
    const { client, calls } = setup((carrier) => {
      carrier['traceparent'] = `00-${TRACE_ID}-${SPAN_ID}-00`;
      carrier['tracestate'] = 'vendor=1';
    });
    await client.media.metadata(MEDIA_OBJECT.id);
    await client.media.metadata(MEDIA_OBJECT.id, { traceparent: `00-${TRACE_ID}-${'1'.repeat(16)}-01` });
    expect(calls[0]!.headers.get('traceparent')).toBe(`00-${TRACE_ID}-${SPAN_ID}-00`);
    expect(calls[0]!.headers.get('tracestate')).toBe('vendor=1');
    expect(calls[1]!.headers.get('traceparent')).toBe(`00-${TRACE_ID}-${'1'.repeat(16)}-01`);
  });

  it('survives a propagator that throws', async () => {
    const { client, calls } = setup(() => {
      throw new Error('broken tracer');
    });
    await client.media.metadata(MEDIA_OBJECT.id);
    expect(calls[0]!.headers.get('traceparent')).toBeNull();
  });

  it('sends nothing when no OpenTelemetry context is active', async () => {
    const { client, calls } = setup();
    await client.media.metadata(MEDIA_OBJECT.id);
    expect(calls[0]!.headers.get('traceparent')).toBeNull();
  });

  it('injects the active span of the real @opentelemetry/api (no propagator registered)', async () => {
    otel.context.setGlobalContextManager(new AsyncLocalContextManager());
    const { client, calls } = setup();
    await inSpan(() => client.media.metadata(MEDIA_OBJECT.id));
    await inSpan(() => client.media.resolvePayload({}), otel.TraceFlags.NONE);
    await client.media.metadata(MEDIA_OBJECT.id);
    expect(calls[0]!.headers.get('traceparent')).toBe(`00-${TRACE_ID}-${SPAN_ID}-01`);
    expect(calls[1]!.headers.get('traceparent')).toBe(`00-${TRACE_ID}-${SPAN_ID}-00`);
    expect(calls[2]!.headers.get('traceparent')).toBeNull();
  });

  it('uses the globally registered propagator when the application set one', async () => {
    otel.context.setGlobalContextManager(new AsyncLocalContextManager());
    otel.propagation.setGlobalPropagator({
      inject(context, carrier, setter) {
        const span = otel.trace.getSpanContext(context);
        if (span) setter.set(carrier, 'traceparent', `00-${span.traceId}-${span.spanId}-01`);
        setter.set(carrier, 'baggage', 'tenant=jan');
      },
      extract: (context) => context,
      fields: () => ['traceparent', 'baggage'],
    });
    const { client, calls } = setup();
    await inSpan(() => client.media.metadata(MEDIA_OBJECT.id));
    expect(calls[0]!.headers.get('traceparent')).toBe(`00-${TRACE_ID}-${SPAN_ID}-01`);
    expect(calls[0]!.headers.get('baggage')).toBe('tenant=jan');
  });

  it('ignores invalid span contexts', () => {
    otel.context.setGlobalContextManager(new AsyncLocalContextManager());
    const span = otel.trace.wrapSpanContext({ traceId: '0'.repeat(32), spanId: SPAN_ID, traceFlags: 1 });
    const carrier: Record<string, string> = {};
    otel.context.with(otel.trace.setSpan(otel.ROOT_CONTEXT, span), () => openTelemetryPropagator(carrier));
    expect(carrier).toEqual({});
  });
});
