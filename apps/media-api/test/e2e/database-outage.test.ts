import { createServer, connect, type Server, type Socket } from 'node:net';
import { dataUrl, uniqueUser } from '../support/images';
import { freePort, postgresDsn, startTestApp, type TestApp } from '../support/test-app';
import { uniquePng } from '../support/unique-image';

jest.setTimeout(60_000);

/**
 * A loopback TCP proxy in front of the test PostgreSQL, so the database can "go away" under a
 * running app (`down()` refuses new connections and cuts open ones) and come back (`up()`).
 */
class DatabaseLink {
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();

  constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  async up(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.once('close', () => this.sockets.delete(socket));
        socket.on('error', () => socket.destroy());
      }
      client.pipe(upstream).pipe(client);
      client.once('close', () => upstream.destroy());
      upstream.once('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = null;
    for (const socket of this.sockets) socket.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** With the database gone, requests answer 503 `database_unavailable` (retryable), never a 500. */
describe('database outage', () => {
  let app: TestApp;
  let link: DatabaseLink;
  const user = uniqueUser('outage');

  beforeAll(async () => {
    const dsn = new URL(postgresDsn());
    link = new DatabaseLink(await freePort(), { host: dsn.hostname, port: Number(dsn.port || 5432) });
    await link.up();
    dsn.hostname = '127.0.0.1';
    dsn.port = String(link.port);
    app = await startTestApp({ env: { MEDIA_RATE_LIMIT: '0', DB_POSTGRESQL_WRITE_DSN: dsn.toString() } });
  });
  afterAll(async () => {
    await app?.close();
    await link?.down();
  });

  it('answers 503 database_unavailable while the database is gone, and recovers when it is back', async () => {
    const ingest = () => app.call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(png) } }) });
    const png = await uniquePng();
    const before = await ingest();
    expect(before.status).toBe(200);
    const { id } = (await before.json()) as { id: string };

    await link.down();
    try {
      for (const res of [
        await ingest(),
        await app.call('/v1/media/resolve', { method: 'POST', user, body: JSON.stringify({ payload: { u: `data:image/png;${id}` } }) }),
        await app.call(`/v1/media/${id}`, { user }),
      ]) {
        expect(res.status).toBe(503);
        expect(res.headers.get('retry-after')).toBe('2');
        expect(await res.json()).toMatchObject({ code: 'database_unavailable' });
      }
      const ready = await app.call('/readyz');
      expect(ready.status).toBe(503);
      expect(ready.headers.get('retry-after')).toBe('2');
    } finally {
      await link.up();
    }

    const after = await app.call(`/v1/media/${id}`, { user });
    expect(after.status).toBe(200);
    expect((await app.call('/readyz')).status).toBe(200);
  });
});
