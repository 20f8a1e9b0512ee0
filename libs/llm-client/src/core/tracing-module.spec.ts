import { openTelemetryPropagator, resetOpenTelemetryCache } from './tracing';

// When @opentelemetry/api resolves from the SDK's own location (the CommonJS build installed next
// to it), the module's API is used rather than the global registry.
const inject = jest.fn((_context: unknown, carrier: Record<string, string>) => {
  carrier['traceparent'] = '00-11111111111111111111111111111111-2222222222222222-01';
});
const getSpanContext = jest.fn();

jest.mock(
  '@opentelemetry/api',
  () => ({
    context: { active: () => ({ getValue: () => undefined }) },
    propagation: { inject: (...args: [unknown, Record<string, string>]) => inject(...args) },
    trace: { getSpanContext: (...args: unknown[]) => getSpanContext(...args) },
  }),
  { virtual: true },
);

describe('openTelemetryPropagator with a resolvable @opentelemetry/api', () => {
  beforeEach(() => resetOpenTelemetryCache());

  it('injects through the module propagation API', () => {
    const carrier: Record<string, string> = {};
    openTelemetryPropagator(carrier);
    expect(inject).toHaveBeenCalledTimes(1);
    expect(carrier['traceparent']).toBe('00-11111111111111111111111111111111-2222222222222222-01');
    expect(getSpanContext).not.toHaveBeenCalled();
  });

  it('formats traceparent from the span context when no propagator wrote one', () => {
    inject.mockImplementationOnce(() => undefined);
    getSpanContext.mockReturnValueOnce({
      traceId: 'a'.repeat(32),
      spanId: 'b'.repeat(16),
      traceFlags: 1,
      traceState: { serialize: () => 'k=v' },
    });
    const carrier: Record<string, string> = {};
    openTelemetryPropagator(carrier);
    expect(carrier).toEqual({ traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`, tracestate: 'k=v' });
  });
});
