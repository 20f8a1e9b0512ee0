import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buffer } from 'node:stream/consumers';
import { startBuiltService, type BuiltService } from '../support/built-service';
import { SERVICE_KEY } from '../support/test-app';
import { dataUrl, pngImage } from '../support/images';
const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const PARENT_SPAN_ID = 'b7ad6b7169203331';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: { stringValue?: string; intValue?: number | string } }[];
}

/** OTLP/JSON ids are hex; some encoders use base64. */
const hex = (id: string | undefined) => (id && !/^[0-9a-f]+$/.test(id) ? Buffer.from(id, 'base64').toString('hex') : id);
const attribute = (span: OtlpSpan, key: string) => {
  const value = span.attributes.find((a) => a.key === key)?.value;
  return value?.stringValue ?? (value?.intValue === undefined ? undefined : Number(value.intValue));
};

/** The built service with OTEL_EXPORTER_OTLP_ENDPOINT set, exporting to an OTLP/HTTP receiver on loopback. */
describe('span export (OpenTelemetry, OTLP over HTTP)', () => {
  let receiver: Server;
  const exports: { path: string; body: any }[] = [];
  let service: BuiltService;
  let port: number;

  beforeAll(async () => {
    receiver = http.createServer(async (req, res) => {
      const body = await buffer(req);
      exports.push({ path: req.url ?? '', body: JSON.parse(body.toString('utf8')) });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    service = await startBuiltService({
      LOG_LEVEL: 'warn',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`,
      OTEL_SERVICE_NAME: 'media-api-under-test',
    });
    port = Number(new URL(service.baseUrl).port);
  });
  afterAll(async () => {
    await service?.stop();
    receiver?.closeAllConnections();
    await new Promise((resolve) => receiver?.close(resolve));
  });

  it('exports one server span per request under the caller\'s trace, and flushes on shutdown', async () => {
    const headers = { 'content-type': 'application/json', 'x-media-service-key': SERVICE_KEY, 'x-jan-user-id': `otel-${Date.now()}` };
    const ingest = await fetch(`http://127.0.0.1:${port}/v1/media`, {
      method: 'POST',
      headers: { ...headers, traceparent: `00-${TRACE_ID}-${PARENT_SPAN_ID}-01`, 'x-request-id': 'otel-ingest-1' },
      body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(await pngImage(5150)) } }),
    });
    expect(ingest.status).toBe(200);
    const { id } = (await ingest.json()) as { id: string };
    const resolved = await fetch(`http://127.0.0.1:${port}/v1/media/resolve?probe=secret-query`, {
      method: 'POST',
      headers: { ...headers, traceparent: `00-${TRACE_ID}-${PARENT_SPAN_ID}-01` },
      body: JSON.stringify({ payload: { u: `data:image/png;${id}` } }),
    });
    expect(resolved.status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);

    // SIGTERM: the app closes and the SDK exports what it buffered before the process exits.
    const exited = new Promise((resolve) => service.child.once('exit', resolve));
    await service.stop();
    expect(await exited).toBe(0);

    expect(exports.every((e) => e.path === '/v1/traces')).toBe(true);
    const resourceSpans = exports.flatMap((e) => e.body.resourceSpans as any[]);
    const serviceNames = resourceSpans.map((r) => r.resource.attributes.find((a: any) => a.key === 'service.name')?.value.stringValue);
    expect(new Set(serviceNames)).toEqual(new Set(['media-api-under-test']));
    const spans: OtlpSpan[] = resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s: any) => s.spans));
    expect(spans.map((s) => s.name).sort()).toEqual(['POST /v1/media', 'POST /v1/media/resolve']);
    for (const span of spans) {
      expect(hex(span.traceId)).toBe(TRACE_ID);
      expect(hex(span.parentSpanId)).toBe(PARENT_SPAN_ID);
      expect(span.kind).toBe(2); // SERVER
      expect(attribute(span, 'http.response.status_code')).toBe(200);
    }
    const ingestSpan = spans.find((s) => s.name === 'POST /v1/media')!;
    expect(attribute(ingestSpan, 'jan.request_id')).toBe('otel-ingest-1');
    expect(JSON.stringify(spans)).not.toContain('secret-query');
    expect(JSON.stringify(spans)).not.toContain(SERVICE_KEY);
  });
});
