import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SERVICE_KEY, SIGNING_KEYS, freePort, postgresDsn } from '../support/test-app';
import { dataUrl, pngImage } from '../support/images';

const MAIN = join(__dirname, '../../dist/main.js');
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

/** The built service, as deployed: its JSON log lines carry the caller's W3C trace id. */
describe('trace correlation in logs', () => {
  let child: ChildProcess;
  let port: number;
  let dataDir: string;
  const lines: string[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'jan-media-trace-'));
    port = await freePort();
    child = spawn(process.execPath, [MAIN], {
      env: {
        PATH: process.env.PATH,
        MEDIA_API_PORT: String(port),
        MEDIA_API_HOST: '127.0.0.1',
        MEDIA_PUBLIC_URL: `http://127.0.0.1:${port}`,
        MEDIA_DATA_DIR: dataDir,
        DB_POSTGRESQL_WRITE_DSN: postgresDsn(),
        MEDIA_SERVICE_KEY: SERVICE_KEY,
        MEDIA_SIGNING_KEYS: SIGNING_KEYS,
        MEDIA_RETENTION_SWEEP_INTERVAL: '0',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      lines.push(...parts);
    });
    for (let i = 0; i < 150; i++) {
      const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then((r) => r.ok, () => false);
      if (ok) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('the service did not start');
  });
  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
    await rm(dataDir, { recursive: true, force: true });
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
