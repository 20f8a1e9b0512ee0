import { request } from 'node:http';
import { connect } from 'node:net';
import { access, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from 'pg';
import { AuditTrail, MediaStorage } from '@jan/domain';
import { postgresDsn, SERVICE_KEY, startTestApp, type TestApp } from '../support/test-app';
import { dataUrl, noisyPng, uniqueUser } from '../support/images';
import { uniquePng } from '../support/unique-image';
import { RetentionSweeper } from '../../src/modules/media/retention-sweeper';

jest.setTimeout(60_000);

/** POSTs `body` in two parts, the second only once `release` resolves; answers status and JSON. */
function slowPost(baseUrl: string, path: string, user: string, body: string, release: Promise<void>): {
  sentFirstPart: Promise<void>;
  answer: Promise<{ status: number; json: any }>;
} {
  let firstPartSent!: () => void;
  const sentFirstPart = new Promise<void>((resolve) => (firstPartSent = resolve));
  const answer = new Promise<{ status: number; json: any }>((resolve, reject) => {
    const bytes = Buffer.from(body);
    const req = request(`${baseUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': String(bytes.length), 'x-media-service-key': SERVICE_KEY, 'x-jan-user-id': user },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString() || 'null') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    const half = Math.floor(bytes.length / 2);
    req.write(bytes.subarray(0, half), () => {
      firstPartSent();
      void release.then(() => req.end(bytes.subarray(half)));
    });
  });
  return { sentFirstPart, answer };
}

/** One request on a connection of its own (no agent): status, headers and JSON body, or the connection error's code. */
function freshRequest(baseUrl: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; headers: Record<string, unknown>; json: any } | string> {
  return new Promise((resolve) => {
    const req = request(`${baseUrl}${path}`, { method, agent: false, headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, json: JSON.parse(Buffer.concat(chunks).toString() || 'null') }));
    });
    req.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    req.end(body);
  });
}

/** docs/operations.md: SIGTERM stops accepting connections and finishes in-flight requests. */
describe('graceful shutdown', () => {
  let app: TestApp | undefined;
  let closing: Promise<void> | undefined;
  /** What the SIGTERM handler of main.ts runs. */
  const shutDown = () => (closing = app!.running.close());
  afterEach(async () => {
    // Whether or not the test shut the app down itself: its data dir and database go.
    await closing?.catch(() => undefined);
    await app?.close();
    app = undefined;
    closing = undefined;
  });

  it('finishes an upload in flight, with its object, its row and its audit entry', async () => {
    app = await startTestApp({ env: { MEDIA_SHUTDOWN_GRACE: '10s' } });
    // A database under load: each audit write takes a moment longer than the process has left
    // once its last request has been answered.
    const trail = app.running.app.get(AuditTrail);
    const appendMany = trail.appendMany.bind(trail);
    trail.appendMany = async (entries) => {
      await new Promise((r) => setTimeout(r, 100));
      return appendMany(entries);
    };
    const user = uniqueUser('shutdown');
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const upload = slowPost(app.baseUrl, '/v1/media', user, JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(await uniquePng()) } }), released);
    await upload.sentFirstPart;
    // Let the server read the first part, so the request is in flight when the shutdown begins.
    await new Promise((r) => setTimeout(r, 200));

    const closed = shutDown();
    await new Promise((r) => setTimeout(r, 300));
    release();
    const { status, json } = await upload.answer;
    await closed;

    expect(status).toBe(200);
    expect(json.id).toMatch(/^jan_/);
    await access(join(app.dataDir, 'objects', 'images', `${json.id}.png`));
    const db = new Client({ connectionString: postgresDsn() });
    await db.connect();
    try {
      const rows = await db.query('SELECT status FROM media_api.media_objects WHERE id = $1', [json.id]);
      expect(rows.rows).toEqual([{ status: 'ready' }]);
      const audit = await db.query('SELECT action, outcome FROM media_api.media_audit_events WHERE media_id = $1', [json.id]);
      expect(audit.rows).toEqual([{ action: 'media.ingest', outcome: 'success' }]);
    } finally {
      await db.end();
    }
  });

  it('lets a request whose connection the grace period cut finish its writes before the database closes', async () => {
    app = await startTestApp({ env: { MEDIA_SHUTDOWN_GRACE: '1s' } });
    const user = uniqueUser('shutdown-cut');
    // Storage slower than the grace period: the upload is still being stored when its
    // connection is closed.
    const storage = app.running.app.get(MediaStorage);
    const put = storage.put.bind(storage);
    let putStarted!: () => void;
    const storing = new Promise<void>((resolve) => (putStarted = resolve));
    storage.put = async (key, body, options) => {
      putStarted();
      await new Promise((r) => setTimeout(r, 1500));
      return put(key, body, options);
    };
    // Over 1 MiB: staged in a temp file under <data dir>/tmp.
    const image = await noisyPng(700);
    expect(image.length).toBeGreaterThan(1024 * 1024);
    const upload = slowPost(app.baseUrl, '/v1/media', user, JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(image) } }), Promise.resolve());
    upload.answer.catch(() => undefined);
    await storing;

    await shutDown();

    // The answer was lost with the connection; what the upload did must be whole: no temp file,
    // and an object only with its row and its audit entry.
    expect(await readdir(join(app.dataDir, 'tmp'))).toEqual([]);
    const stored = await readdir(join(app.dataDir, 'objects', 'images')).catch(() => [] as string[]);
    const db = new Client({ connectionString: postgresDsn() });
    await db.connect();
    try {
      const rows = await db.query('SELECT id FROM media_api.media_objects WHERE created_by = $1', [user]);
      expect(stored.map((name) => name.replace(/\.png$/, ''))).toEqual(rows.rows.map((r) => r.id));
      const audit = await db.query("SELECT media_id FROM media_api.media_audit_events WHERE action = 'media.ingest' AND details->>'owner' = $1", [user]);
      expect(audit.rows.map((r) => r.media_id)).toEqual(rows.rows.map((r) => r.id));
    } finally {
      await db.end();
    }
  });

  it('answers a request arriving on an open keep-alive connection during the drain as usual, then closes it', async () => {
    app = await startTestApp({ env: { MEDIA_SHUTDOWN_GRACE: '10s' } });
    const user = uniqueUser('shutdown-keepalive');
    const socket = connect(Number(new URL(app.baseUrl).port), '127.0.0.1');
    let received = '';
    socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
    const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    const body = JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(await uniquePng()) } });
    const head = `POST /v1/media HTTP/1.1\r\nHost: t\r\nx-media-service-key: ${SERVICE_KEY}\r\nx-jan-user-id: ${user}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n`;
    socket.write(head + body.slice(0, 100));
    await new Promise((r) => setTimeout(r, 200));

    const closed = shutDown();
    await new Promise((r) => setTimeout(r, 100));
    // The first request completes; a second one follows on the same connection at once.
    socket.write(body.slice(100) + `GET /v1/usage HTTP/1.1\r\nHost: t\r\nx-media-service-key: ${SERVICE_KEY}\r\nx-jan-user-id: ${user}\r\nx-request-id: keepalive-second\r\n\r\n`);
    await ended;
    await closed;

    const responses = received.split(/(?=HTTP\/1\.1 )/);
    expect(responses).toHaveLength(2);
    expect(responses[0]).toMatch(/^HTTP\/1\.1 200 /);
    const second = responses[1]!;
    // Not a body without the stable code and request id every answer carries (docs/api.md).
    expect(second).toMatch(/^HTTP\/1\.1 200 /);
    expect(second).toMatch(/\r\nx-request-id: keepalive-second\r\n/i);
    expect(second).toMatch(/\r\nconnection: close\r\n/i);
    expect(JSON.parse(second.slice(second.indexOf('\r\n\r\n') + 4))).toMatchObject({ owner: user });
  });

  it('stops accepting connections at once while a retention sweep runs, and stops the sweep', async () => {
    // The sweep acts on every expired row: a database of its own.
    app = await startTestApp({ ownDatabase: true, env: { MEDIA_SHUTDOWN_GRACE: '10s' } });
    const owner = uniqueUser('shutdown-sweep');
    await app.running.database.writer.query(
      `INSERT INTO media_api.media_objects (id, storage_provider, storage_key, mime_type, bytes, sha256, created_by, retention_until, status)
       SELECT 'jan_01zz' || lpad(g::text, 22, '0'), 'local', 'images/jan_01zz' || lpad(g::text, 22, '0') || '.png', 'image/png', 95,
              md5(g::text) || md5(g::text), $1, now() - interval '1 day', 'ready'
       FROM generate_series(1, 300) g`,
      [owner],
    );
    // A backlog that takes a while: each removal waits on the storage.
    const storage = app.running.app.get(MediaStorage);
    const remove = storage.delete.bind(storage);
    storage.delete = async (key) => {
      await new Promise((r) => setTimeout(r, 20));
      return remove(key);
    };
    const sweeping = app.running.app.get(RetentionSweeper).sweep();
    await new Promise((r) => setTimeout(r, 200));

    const started = Date.now();
    const closed = shutDown();
    await new Promise((r) => setTimeout(r, 200));
    const probe = await fetch(`${app.baseUrl}/healthz`).then((res) => res.status, (error: Error) => (error.cause as { code?: string })?.code ?? error.message);
    expect(probe).toBe('ECONNREFUSED');
    await closed;
    await sweeping;
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('with MEDIA_SHUTDOWN_DELAY, fails /readyz at once and serves new connections until the delay ends, then stops accepting', async () => {
    app = await startTestApp({ env: { MEDIA_SHUTDOWN_GRACE: '10s', MEDIA_SHUTDOWN_DELAY: '1s' } });
    const user = uniqueUser('shutdown-delay');
    const started = Date.now();
    const closed = shutDown();
    await new Promise((r) => setTimeout(r, 100));

    // The load balancer takes a moment to stop sending traffic: readiness fails first, while
    // new connections are still accepted and served (each answer closing its connection).
    const ready = await freshRequest(app.baseUrl, 'GET', '/readyz');
    expect(ready).toMatchObject({ status: 503, json: { status: 'shutting_down' }, headers: { connection: 'close', 'retry-after': '2' } });
    expect(await freshRequest(app.baseUrl, 'GET', '/healthz')).toMatchObject({ status: 200 });
    const body = JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(await uniquePng()) } });
    const upload = await freshRequest(app.baseUrl, 'POST', '/v1/media', { 'x-media-service-key': SERVICE_KEY, 'x-jan-user-id': user }, body);
    expect(upload).toMatchObject({ status: 200, json: { status: 'ready' }, headers: { connection: 'close' } });

    await closed;
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(await freshRequest(app.baseUrl, 'GET', '/healthz')).toBe('ECONNREFUSED');
  });

  it('answers a readiness probe that is running when the shut-down begins 503 shutting_down, not 500', async () => {
    app = await startTestApp({ env: { MEDIA_SHUTDOWN_GRACE: '10s' } });
    // A slow storage round trip: the probe is still checking when the shut-down begins.
    const storage = app.running.app.get(MediaStorage);
    const ping = storage.ping.bind(storage);
    let pinging!: () => void;
    const checking = new Promise<void>((resolve) => (pinging = resolve));
    storage.ping = async () => {
      pinging();
      await new Promise((r) => setTimeout(r, 500));
      return ping();
    };
    const probe = freshRequest(app.baseUrl, 'GET', '/readyz');
    await checking;

    await shutDown();

    expect(await probe).toMatchObject({ status: 503, json: { status: 'shutting_down' }, headers: { 'retry-after': '2' } });
  });
});
