import { SERVICE_KEY } from '../support/test-app';
import { startBuiltService, type BuiltService } from '../support/built-service';
import { dataUrl, pngImage } from '../support/images';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

/** The built service, as deployed: its JSON log lines carry the caller's W3C trace id. */
describe('trace correlation in logs', () => {
  let service: BuiltService;
  let port: number;
  const lines: string[] = [];

  beforeAll(async () => {
    service = await startBuiltService({ LOG_LEVEL: 'info' }, { pipeStdout: true });
    port = Number(new URL(service.baseUrl).port);
    let buffered = '';
    service.child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      lines.push(...parts);
    });
  });
  afterAll(async () => {
    await service?.stop();
  });

  it('puts the traceparent trace id on the request log line and on the domain event lines', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/v1/media`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-media-service-key': SERVICE_KEY,
        'x-jan-user-id': `trace-${Date.now()}`,
        traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01`,
      },
      body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(await pngImage(4242)) } }),
    });
    expect(res.status).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    const traced = lines.filter((line) => line.includes(TRACE_ID)).map((line) => JSON.parse(line));
    expect(traced.some((entry) => entry.event === 'ingest.accepted')).toBe(true);
    expect(traced.some((entry) => entry.msg === 'request completed' && entry.status === 200 && entry.path === '/v1/media')).toBe(true);
    for (const entry of traced) expect(entry.trace_id).toBe(TRACE_ID);
    expect(lines.join('\n')).not.toContain(SERVICE_KEY);
  });
});
