import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SERVICE_KEY } from '../support/test-app';
import { startBuiltService, type BuiltService } from '../support/built-service';
import { dataUrl, pngImage, uniqueUser } from '../support/images';

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const TRACEPARENT = `00-${TRACE_ID}-b7ad6b7169203331-01`;

/**
 * What an SRE adopting the built service checks: metric labels stay bounded whatever clients send,
 * and every log line of a traced request, error lines included, carries the caller's trace id.
 */
describe('observability of the built service', () => {
  let service: BuiltService;
  let storage: string;
  let upstream: Server;
  let upstreamPort: number;
  const lines: string[] = [];

  const ingest = (source: object, headers: Record<string, string> = {}) =>
    fetch(`${service.baseUrl}/v1/media`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-media-service-key': SERVICE_KEY, 'x-jan-user-id': uniqueUser('obs'), ...headers },
      body: JSON.stringify({ source }),
    });
  const metrics = async () => (await fetch(`${service.baseUrl}/metrics`)).text();
  const logged = async (requestId: string) => {
    await new Promise((r) => setTimeout(r, 300));
    return lines.filter((line) => line.includes(`"${requestId}"`)).map((line) => JSON.parse(line) as Record<string, unknown>);
  };

  beforeAll(async () => {
    storage = await mkdtemp(join(tmpdir(), 'jan-media-obs-'));
    // Answers 500 to every fetch: a remote URL the client named that cannot be fetched.
    upstream = createServer((_req, res) => res.writeHead(500).end('no'));
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    upstreamPort = (upstream.address() as AddressInfo).port;
    service = await startBuiltService(
      { LOG_LEVEL: 'info', MEDIA_LOCAL_STORAGE_PATH: storage, MEDIA_REMOTE_FETCH_ALLOW_CIDRS: '127.0.0.0/8', MEDIA_RATE_LIMIT: '0' },
      { pipeStdout: true },
    );
    let buffered = '';
    service.child.stdout!.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      lines.push(...parts.filter((line) => line.startsWith('{')));
    });
  });
  afterAll(async () => {
    await service?.stop();
    await new Promise((r) => upstream?.close(r));
    await rm(storage, { recursive: true, force: true });
  });

  it('keeps the declared type of a mismatched upload out of the metric labels unless it is a known image type', async () => {
    const before: string[] = (await metrics()).match(/^media_ingest_mime_mismatch_total\{.*$/gm) ?? [];
    for (let i = 0; i < 3; i++) {
      const res = await ingest({ type: 'data_url', data_url: dataUrl(await pngImage(9100 + i), `image/x-made-up-${i}-${Date.now()}`) });
      expect(res.status).toBe(200);
    }
    const jpeg = await ingest({ type: 'data_url', data_url: dataUrl(await pngImage(9200), 'image/jpeg') });
    expect(jpeg.status).toBe(200);

    const series = (await metrics()).match(/^media_ingest_mime_mismatch_total\{.*$/gm) ?? [];
    expect(series.join('\n')).not.toContain('made-up');
    expect(series.filter((line) => !before.includes(line) && !/declared="image\/jpeg"/.test(line)).length).toBeLessThanOrEqual(1);
    expect(series.some((line) => line.startsWith('media_ingest_mime_mismatch_total{declared="other",sniffed="image/png"}'))).toBe(true);
    expect(series.some((line) => line.startsWith('media_ingest_mime_mismatch_total{declared="image/jpeg",sniffed="image/png"}'))).toBe(true);
  });

  it('exposes exactly the media metrics docs/operations.md lists', async () => {
    const docs = await readFile(join(__dirname, '../../../../docs/operations.md'), 'utf8');
    const section = docs.slice(docs.indexOf('## Metrics'), docs.indexOf('## Logs'));
    const documented = new Set(section.split('\n').filter((line) => line.startsWith('| `media_')).flatMap((line) => line.split('|')[1]!.match(/media_[a-z_]+/g) ?? []));
    const exposed = new Set([...(await metrics()).matchAll(/^# TYPE (media_[a-z_]+) /gm)].map((match) => match[1]!));
    expect([...exposed].sort()).toEqual([...documented].sort());
  });

  it('does not add a label value for an unknown id or a random unknown path', async () => {
    const routes = () => metrics().then((text) => new Set(text.match(/route="[^"]*"/g)));
    await fetch(`${service.baseUrl}/v1/media/jan_01m8h6v2c0ddpbtxdvh9tpzzzz`, { headers: { 'x-media-service-key': SERVICE_KEY } });
    await fetch(`${service.baseUrl}/random-${Date.now()}`);
    const known = await routes();
    for (let i = 0; i < 3; i++) {
      await fetch(`${service.baseUrl}/v1/media/jan_01m8h6v2c0ddpbtxdvh9tp${1000 + i}`, { headers: { 'x-media-service-key': SERVICE_KEY } });
      await fetch(`${service.baseUrl}/random-${Date.now()}-${i}/x`);
    }
    expect([...(await routes())].sort()).toEqual([...known].sort());
    expect([...known].join()).not.toMatch(/jan_|random-/);
  });

  it('echoes a sane X-Request-Id and replaces a hostile one, in the answer and the log alike', async () => {
    const usage = (id: string) => fetch(`${service.baseUrl}/v1/usage`, { headers: { 'x-media-service-key': SERVICE_KEY, 'x-request-id': id } });
    const sane = await usage('llm-api.req_42:7');
    expect(sane.headers.get('x-request-id')).toBe('llm-api.req_42:7');
    for (const hostile of ['a'.repeat(10_240), 'abc {"level":60}', 'a, b']) {
      const res = await usage(hostile);
      const given = res.headers.get('x-request-id')!;
      expect(given).toMatch(/^[0-9a-f-]{36}$/);
      expect((await logged(given)).some((entry) => entry.msg === 'request completed')).toBe(true);
    }
    expect(lines.join('\n')).not.toMatch(/a{200}|"level":60/);
  });

  it('puts the trace id on the error lines of a storage failure, and no secret on any line', async () => {
    await rm(join(storage, 'images'), { recursive: true, force: true });
    await writeFile(join(storage, 'images'), 'not a directory');
    try {
      const res = await ingest(
        { type: 'data_url', data_url: dataUrl(await pngImage(9300)) },
        { traceparent: TRACEPARENT, 'x-request-id': 'obs-storage-failure', authorization: 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2VjcmV0' },
      );
      expect(res.status).toBe(503);
      const entries = await logged('obs-storage-failure');
      expect(entries.some((entry) => entry.msg === 'request failed')).toBe(true);
      for (const entry of entries) expect(entry.trace_id).toBe(TRACE_ID);
    } finally {
      await rm(join(storage, 'images'), { force: true });
    }
    const all = lines.join('\n');
    expect(all).not.toContain(SERVICE_KEY);
    expect(all).not.toContain('eyJhbGciOiJIUzI1NiJ9');
  });

  it('counts a deletion the storage refused, by reason and code', async () => {
    const owner = uniqueUser('obs-del');
    const res = await ingest({ type: 'data_url', data_url: dataUrl(await pngImage(9400)) }, { 'x-jan-user-id': owner });
    const { id } = (await res.json()) as { id: string };
    // A directory in the object's place: the local backend cannot remove it (docs/operations.md, "Retention").
    const object = join(storage, 'images', `${id}.png`);
    await rm(object);
    await mkdir(object);
    await writeFile(join(object, 'held'), 'x');
    try {
      const del = await fetch(`${service.baseUrl}/v1/media/${id}`, { method: 'DELETE', headers: { 'x-media-service-key': SERVICE_KEY, 'x-jan-user-id': owner } });
      expect(del.status).toBe(503);
      expect(await metrics()).toMatch(/^media_delete_failed_total\{reason="request",code="storage_unavailable"\} 1$/m);
    } finally {
      await rm(object, { recursive: true, force: true });
    }
  });

  it('logs a remote URL that could not be fetched at warn, with the trace id, and never its query string', async () => {
    const res = await ingest(
      { type: 'remote_url', url: `http://127.0.0.1:${upstreamPort}/img.png?X-Amz-Signature=feedface0123&sig=cafe4567` },
      { traceparent: TRACEPARENT, 'x-request-id': 'obs-remote-failure' },
    );
    expect(res.status).toBe(502);
    const entries = await logged('obs-remote-failure');
    expect(entries.some((entry) => entry.msg === 'remote fetch failed')).toBe(true);
    const request = entries.find((entry) => entry.msg === 'request completed');
    // The client's URL is the client's to fix: not an error of this service (docs/operations.md, "Logs").
    expect(request?.level).toBe(40);
    for (const entry of entries) expect(entry.trace_id).toBe(TRACE_ID);
    expect(lines.join('\n')).not.toMatch(/feedface0123|cafe4567/);
  });
});
