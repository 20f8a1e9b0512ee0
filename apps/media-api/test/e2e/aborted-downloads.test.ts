import { readFile, readdir } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { startBuiltService, type BuiltService } from '../support/built-service';
import { SERVICE_KEY } from '../support/test-app';
import { dataUrl, noisyPng, uniqueUser } from '../support/images';

/** Starts a GET and drops the connection as soon as the first bytes of the body arrive. */
function abortAfterFirstChunk(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers, agent: false }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve(res.statusCode ?? 0);
      });
    });
    req.on('error', (error: NodeJS.ErrnoException) => (req.destroyed ? undefined : reject(error)));
    req.end();
  });
}

async function openDescriptors(pid: number): Promise<number> {
  return (await readdir(`/proc/${pid}/fd`)).length;
}

/** Bytes the process has read through read(2) and friends so far (`rchar` of /proc/<pid>/io). */
async function bytesRead(pid: number): Promise<number> {
  return Number(/^rchar: (\d+)$/m.exec(await readFile(`/proc/${pid}/io`, 'utf8'))![1]);
}

/** Clients that hang up midway (a closed tab, a provider's fetcher timing out) on the built service. */
describe('downloads cut short by the client, and HEAD', () => {
  let service: BuiltService;
  const logLines: string[] = [];

  beforeAll(async () => {
    service = await startBuiltService({ LOG_LEVEL: 'info' }, { pipeStdout: true });
    let rest = '';
    service.child.stdout!.on('data', (chunk: Buffer) => {
      const lines = (rest + chunk.toString()).split('\n');
      rest = lines.pop() ?? '';
      logLines.push(...lines);
    });
  });
  afterAll(async () => {
    await service?.stop();
  });

  /** A fresh user's image on the built service: its bytes, id, signed URL and the headers to act as that user. */
  async function upload(name: string) {
    const auth = { 'x-media-service-key': SERVICE_KEY, 'x-jan-user-id': uniqueUser(name) };
    const png = await noisyPng(1024);
    const res = await fetch(`${service.baseUrl}/v1/media`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(png) } }),
    });
    expect(res.status).toBe(200);
    const { id, url } = (await res.json()) as { id: string; url: string };
    return { auth, png, id, url };
  }

  it('leaves no file descriptor open and logs no error after 50 aborted downloads on the proxy and signed URLs', async () => {
    const { auth, id, url } = await upload('aborts');
    const pid = service.child.pid!;
    // One finished download of each kind first, so what the first requests set up once is counted in the baseline.
    await fetch(`${service.baseUrl}/v1/media/${id}`, { headers: auth }).then((r) => r.arrayBuffer());
    await fetch(url).then((r) => r.arrayBuffer());
    const before = await openDescriptors(pid);
    const errorsBefore = logLines.filter((line) => /"level":(50|60)/.test(line)).length;

    const statuses: number[] = [];
    for (let i = 0; i < 50; i++) {
      const range: Record<string, string> = i % 4 === 0 ? { range: 'bytes=1000-' } : {};
      statuses.push(await (i % 2 === 0 ? abortAfterFirstChunk(`${service.baseUrl}/v1/media/${id}`, { ...auth, ...range }) : abortAfterFirstChunk(url, range)));
    }
    expect(new Set(statuses)).toEqual(new Set([200, 206]));

    let after = await openDescriptors(pid);
    for (let i = 0; i < 50 && after > before + 5; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await openDescriptors(pid);
    }
    // A little room for what the process may open meanwhile (a pooled database connection); a
    // descriptor kept per aborted download would be dozens.
    expect(after).toBeLessThanOrEqual(before + 5);
    expect(logLines.filter((line) => /"level":(50|60)/.test(line)).slice(errorsBefore)).toEqual([]);
    // Still serving.
    expect((await fetch(url)).status).toBe(200);
  });

  it('answers HEAD on the proxy and on signed URLs without reading the object', async () => {
    const { auth, png, id, url } = await upload('heads');
    const pid = service.child.pid!;
    const before = await bytesRead(pid);
    for (let i = 0; i < 5; i++) {
      for (const head of [await fetch(`${service.baseUrl}/v1/media/${id}`, { method: 'HEAD', headers: auth }), await fetch(url, { method: 'HEAD' })]) {
        expect(head.status).toBe(200);
        expect(head.headers.get('content-length')).toBe(String(png.length));
      }
    }
    // Ten HEADs that streamed the object into the void would have read ten times its size.
    expect((await bytesRead(pid)) - before).toBeLessThan(png.length);
  });
});
