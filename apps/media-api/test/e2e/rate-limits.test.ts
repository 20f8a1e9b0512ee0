import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, postgresDsn, SERVICE_KEY, SIGNING_KEYS, startTestApp, type TestApp } from '../support/test-app';
import { dataUrl, uniqueUser } from '../support/images';
import { uniquePng } from '../support/unique-image';

jest.setTimeout(60_000);

const ADMIN_KEY = 'e2e-admin-key-rate-0123456789';

describe('rate limits (in memory)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ env: { MEDIA_RATE_LIMIT: '5', MEDIA_RATE_LIMIT_SERVICE: '8', MEDIA_RATE_LIMIT_WINDOW: '60', MEDIA_ADMIN_KEY: ADMIN_KEY } });
  });
  afterAll(async () => {
    await app?.close();
  });

  it('answers 429 rate_limited with Retry-After once a user has spent the window', async () => {
    const user = uniqueUser('busy');
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < 6; i++) {
      last = await app.call('/v1/usage', { user });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    const retryAfter = Number(last!.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(await last!.json() as any).toMatchObject({ code: 'rate_limited', details: { retry_after_seconds: retryAfter } });
    expect(last!.headers.get('ratelimit-remaining')).toBe('0');

    // Another user has a budget of their own.
    expect((await app.call('/v1/usage', { user: uniqueUser('calm') })).status).toBe(200);
  });

  it('counts a user named by user_id in a JSON body or a multipart field like one named in X-Jan-User-Id', async () => {
    const user = uniqueUser('body');
    for (let i = 0; i < 5; i++) expect((await app.call('/v1/usage', { user })).status).toBe(200);
    expect((await app.call('/v1/usage', { user })).status).toBe(429);

    // JSON body: refused before anything is fetched, decoded or stored.
    const json = await app.call('/v1/media', { method: 'POST', body: JSON.stringify({ user_id: user, source: { type: 'data_url', data_url: dataUrl(await uniquePng()) } }) });
    expect(json.status).toBe(429);
    expect(await json.json() as any).toMatchObject({ code: 'rate_limited' });
    expect(json.headers.get('ratelimit-remaining')).toBe('0');
    expect(Number(json.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const prepared = await app.call('/v1/media/prepare-upload', { method: 'POST', body: JSON.stringify({ user_id: user, mime_type: 'image/png', bytes: 100 }) });
    expect(prepared.status).toBe(429);

    // Multipart: the field is counted when it is read, before the file is stored.
    const form = new FormData();
    form.append('user_id', user);
    form.append('file', new Blob([new Uint8Array(await uniquePng())], { type: 'image/png' }), 'x.png');
    const multipart = await app.call('/v1/media/upload', { method: 'POST', body: form });
    expect(multipart.status).toBe(429);
    expect(await multipart.json() as any).toMatchObject({ code: 'rate_limited' });
    expect(multipart.headers.get('ratelimit-limit')).toBe('5');
    expect(multipart.headers.get('ratelimit-remaining')).toBe('0');
    expect(Number(multipart.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);

    // A user_id after the file is refused anyway (400), and charged to that user: 429 once spent.
    const late = new FormData();
    late.append('file', new Blob([new Uint8Array(await uniquePng())], { type: 'image/png' }), 'x.png');
    late.append('user_id', user);
    const lateAnswer = await app.call('/v1/media/upload', { method: 'POST', body: late });
    expect(lateAnswer.status).toBe(429);
    expect(await lateAnswer.json() as any).toMatchObject({ code: 'rate_limited' });
    expect(lateAnswer.headers.get('ratelimit-remaining')).toBe('0');

    const stored = await app.running.database.writer.query('SELECT count(*)::int AS n FROM media_api.media_objects WHERE created_by = $1', [user]);
    expect(stored[0].n).toBe(0);
  });

  it('charges a multipart user_id sent after the file to that user, though the upload is refused', async () => {
    const user = uniqueUser('late');
    const late = new FormData();
    late.append('file', new Blob([new Uint8Array(await uniquePng())], { type: 'image/png' }), 'x.png');
    late.append('user_id', user);
    const answer = await app.call('/v1/media/upload', { method: 'POST', body: late });
    expect(answer.status).toBe(400);
    expect(answer.headers.get('ratelimit-remaining')).toBe('4');
    expect((await app.call('/v1/usage', { user })).headers.get('ratelimit-remaining')).toBe('3');
  });

  it('counts a service acting for nobody in its own bucket, and never limits admins, health, metrics or signed URLs', async () => {
    const owner = uniqueUser('owner');
    const png = await uniquePng();
    const created = await (await app.call('/v1/media', { method: 'POST', user: owner, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(png) } }) })).json() as any;

    // The service's own budget (8; earlier tests' multipart uploads naming nobody spent some of it).
    const first = await app.call('/v1/usage');
    expect(first.headers.get('ratelimit-limit')).toBe('8');
    const left = Number(first.headers.get('ratelimit-remaining'));
    const service: number[] = [first.status];
    for (let i = 0; i <= left; i++) service.push((await app.call('/v1/usage')).status);
    expect(service.filter((s) => s === 429)).toHaveLength(1);
    expect(service.at(-1)).toBe(429);

    for (let i = 0; i < 12; i++) {
      expect((await fetch(`${app.baseUrl}/healthz`)).status).toBe(200);
      expect((await fetch(`${app.baseUrl}/metrics`)).status).toBe(200);
      expect((await fetch(created.url)).status).toBe(200);
      expect((await fetch(`${app.baseUrl}/v1/admin/usage?owner=${owner}`, { headers: { 'x-media-admin-key': ADMIN_KEY } })).status).toBe(200);
    }
  });
  // After the test above, which spends the service's own budget.
  it('counts a multipart upload once, for the user it names, and one naming nobody in the service bucket', async () => {
    const user = uniqueUser('form');
    const upload = async (userId?: string) => {
      const form = new FormData();
      if (userId) form.append('user_id', userId);
      form.append('file', new Blob([new Uint8Array(await uniquePng())], { type: 'image/png' }), 'x.png');
      return app.call('/v1/media/upload', { method: 'POST', body: form });
    };
    const first = await upload(user);
    expect(first.status).toBe(200);
    expect(first.headers.get('ratelimit-remaining')).toBe('4');
    expect((await app.call('/v1/usage', { user })).headers.get('ratelimit-remaining')).toBe('3');
    const own = await upload();
    expect(own.status).toBe(429);
    expect(own.headers.get('ratelimit-limit')).toBe('8');
  });

  it('counts a multipart body refused as too large before its file part, for the user it names', async () => {
    const user = uniqueUser('form-too-large');
    const boundary = 'too-large';
    const head = (name: string) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n`;
    const mib = Buffer.alloc(1024 * 1024, 'x');
    // Sent without a length, so the limit (MEDIA_MAX_BYTES + 64 KiB) is met while it streams, in a
    // text field busboy cuts at 4 KiB but reads to its end.
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(Buffer.from(`${head('user_id')}${user}\r\n${head('note')}`));
        for (let i = 0; i < 21; i++) controller.enqueue(mib);
        controller.close();
      },
    });
    const res = await app.call('/v1/media/upload', { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(413);
    expect((await app.call('/v1/usage', { user })).headers.get('ratelimit-remaining')).toBe('3');
  });
});

describe('rate limits shared through Redis', () => {
  const redisUrl = process.env.TEST_REDIS_URL;
  let first: TestApp;
  let second: TestApp;

  beforeAll(async () => {
    if (!redisUrl) throw new Error('TEST_REDIS_URL is not set: these tests need Redis (pnpm test uses 127.0.0.1:6379 or starts redis-server)');
    const env = { MEDIA_RATE_LIMIT: '4', MEDIA_RATE_LIMIT_WINDOW: '60', MEDIA_REDIS_URL: redisUrl };
    first = await startTestApp({ env });
    second = await startTestApp({ env });
  });
  afterAll(async () => {
    await first?.close();
    await second?.close();
  });

  it('counts one user across replicas', async () => {
    const user = uniqueUser('replicas');
    const statuses: number[] = [];
    for (const app of [first, second, first, second, first, second]) statuses.push((await app.call('/v1/usage', { user })).status);
    expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
    const limited = await second.call('/v1/usage', { user });
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect((await first.call('/v1/usage', { user: uniqueUser('other') })).status).toBe(200);
    // A service key for the user is the same user.
    expect((await fetch(`${first.baseUrl}/v1/usage`, { headers: { 'x-media-service-key': SERVICE_KEY, 'x-jan-user-id': user } })).status).toBe(429);
  });
});

describe('rate limits with Redis away', () => {
  it('lets requests through and reports the outage in its own log lines, not as ioredis "Unhandled error event" prints', async () => {
    // The deployed entry point, so everything the process prints is seen.
    const port = await freePort();
    const dataDir = await mkdtemp(join(tmpdir(), 'jan-media-redis-away-'));
    const child = spawn(process.execPath, [join(__dirname, '../../dist/start.js')], {
      env: {
        PATH: process.env.PATH,
        MEDIA_DATA_DIR: dataDir,
        MEDIA_API_PORT: String(port),
        MEDIA_API_HOST: '127.0.0.1',
        DB_POSTGRESQL_WRITE_DSN: postgresDsn(),
        MEDIA_SERVICE_KEY: SERVICE_KEY,
        MEDIA_SIGNING_KEYS: SIGNING_KEYS,
        MEDIA_RATE_LIMIT: '2',
        // Nothing listens on this loopback port: every connect and reconnect fails.
        MEDIA_REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let printed = '';
    child.stdout!.on('data', (chunk: Buffer) => (printed += chunk.toString('utf8')));
    child.stderr!.on('data', (chunk: Buffer) => (printed += chunk.toString('utf8')));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      const base = `http://127.0.0.1:${port}`;
      for (let i = 0; i < 300 && child.exitCode === null && !(await fetch(`${base}/healthz`).then((r) => r.ok, () => false)); i++) await new Promise((r) => setTimeout(r, 100));
      expect({ exitCode: child.exitCode, printed: child.exitCode === null ? '' : printed }).toEqual({ exitCode: null, printed: '' });
      const headers = { 'x-media-service-key': SERVICE_KEY, 'x-jan-user-id': uniqueUser('redis-away') };
      for (let i = 0; i < 4; i++) expect((await fetch(`${base}/v1/usage`, { headers })).status).toBe(200);
      // Long enough for several reconnect attempts (ioredis backs off 50 ms, 100 ms, …).
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    } finally {
      child.kill('SIGTERM');
      await exited;
      await rm(dataDir, { recursive: true, force: true });
    }
    expect(printed).not.toContain('Unhandled error event');
    expect(printed).toContain('rate_limit.redis_unavailable');
  });
});

describe('rate limits per client address on signed URLs (MEDIA_RATE_LIMIT_PUBLIC)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ env: { MEDIA_RATE_LIMIT: '0', MEDIA_RATE_LIMIT_PUBLIC: '3', MEDIA_RATE_LIMIT_WINDOW: '60' } });
  });
  afterAll(async () => {
    await app?.close();
  });

  it('limits signed-URL fetches per address, and leaves health and authenticated routes alone', async () => {
    const user = uniqueUser('public');
    const ingested = (await (
      await app.call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(await uniquePng()) } }) })
    ).json()) as any;
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await fetch(ingested.url)).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    for (let i = 0; i < 5; i++) expect((await fetch(`${app.baseUrl}/healthz`)).status).toBe(200);
    expect((await app.call(`/v1/media/${ingested.id}`, { user })).status).toBe(200);
  });
});

