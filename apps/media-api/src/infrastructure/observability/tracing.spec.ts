import { tracingSettingsFrom } from './tracing';

describe('tracingSettingsFrom', () => {
  it('is off without an endpoint, so the SDK is never loaded', () => {
    expect(tracingSettingsFrom({})).toBeNull();
    expect(tracingSettingsFrom({ OTEL_SERVICE_NAME: 'x' })).toBeNull();
  });

  it('appends /v1/traces to the base endpoint, or takes the traces endpoint as given', () => {
    expect(tracingSettingsFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' })).toEqual({ tracesUrl: 'http://collector:4318/v1/traces', serviceName: 'jan-media-api' });
    expect(
      tracingSettingsFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:4318/custom', OTEL_SERVICE_NAME: 'media' }),
    ).toEqual({ tracesUrl: 'http://b:4318/custom', serviceName: 'media' });
  });

  it('honours OTEL_TRACES_EXPORTER=none and OTEL_SDK_DISABLED=true', () => {
    expect(tracingSettingsFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' })).toBeNull();
    expect(tracingSettingsFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'TRUE' })).toBeNull();
  });
});
