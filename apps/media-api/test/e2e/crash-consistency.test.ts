import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, utimes, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { startBuiltService, type BuiltService } from '../support/built-service';
import { dataUrl, noisyPng, pngImage, uniqueUser } from '../support/images';
import { SERVICE_KEY, createScratchDatabase } from '../support/test-app';

/** Spool files are `upload-<uuid>`; object writes leave `<key>.<uuid>.partial` until renamed. */
const PARTIAL = /\.partial$/;
const SPOOL = /^upload-/;
const HOUR_AND_A_BIT_MS = 61 * 60 * 1000;

interface Row {
  id: string;
  storage_key: string;
  status: string;
}

/**
 * The service killed with SIGKILL (as the OOM killer, a power cut or `kill -9` would) while uploads
 * are in flight, on PostgreSQL and local disk, then started again on the same data directory and
 * database: once the sweep has run, every object file has its row and every row its object, and
 * no temporary file of a dead write is left.
 */
describe('crash consistency of ingest (SIGKILL mid-upload)', () => {
  let scratch: { dsn: string; drop(): Promise<void> };
  let dataDir: string;
  let service: BuiltService | undefined;
  let db: Client;

  beforeAll(async () => {
    scratch = await createScratchDatabase();
    dataDir = await mkdtemp(join(tmpdir(), 'jan-media-crash-'));
  });
  afterAll(async () => {
    await service?.stop();
    await db?.end().catch(() => undefined);
    await scratch?.drop();
    await rm(dataDir, { recursive: true, force: true });
  });

  const start = (env: Record<string, string> = {}) =>
    startBuiltService({ DB_POSTGRESQL_WRITE_DSN: scratch.dsn, MEDIA_DATA_DIR: dataDir, ...env });

  function upload(baseUrl: string, user: string, image: Buffer, multipart: boolean): Promise<Response> {
    const headers: Record<string, string> = { 'x-media-service-key': SERVICE_KEY, 'x-jan-user-id': user };
    if (multipart) {
      const form = new FormData();
      form.append('file', new Blob([image], { type: 'image/png' }), 'big.png');
      return fetch(`${baseUrl}/v1/media`, { method: 'POST', headers, body: form });
    }
    headers['content-type'] = 'application/json';
    return fetch(`${baseUrl}/v1/media`, { method: 'POST', headers, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(image) } }) });
  }

  const objectsDir = () => join(dataDir, 'objects', 'images');
  const filesIn = async (dir: string) => (existsSync(dir) ? readdir(dir) : []);
  const rows = async () => (await db.query<Row>('SELECT id, storage_key, status FROM media_api.media_objects ORDER BY id')).rows;

  it('leaves, after a restart and a sweep, every object with its row, every row with its object, and no partial file', async () => {
    service = await start();
    const user = uniqueUser('crash');
    // Large ones are spooled to files and take a while to fsync; small ones go fast: the kill
    // lands with uploads at every step (staging, pending row written, object written, ready).
    const images = await Promise.all(
      Array.from({ length: 48 }, (_, i) => (i % 3 === 0 ? noisyPng(700 + i) : pngImage(90_000 + i, 64))),
    );
    const answered: string[] = [];
    const inFlight = images.map((image, i) =>
      upload(service!.baseUrl, user, image, i % 3 === 0).then(
        async (response) => {
          if (response.status === 200) answered.push(((await response.json()) as { id: string }).id);
        },
        () => undefined,
      ),
    );
    // Kill as soon as some uploads are done and others are not.
    for (let i = 0; i < 400 && answered.length < 4; i++) await new Promise((r) => setTimeout(r, 5));
    const exited = new Promise((resolve) => service!.child.once('exit', resolve));
    service.child.kill('SIGKILL');
    await exited;
    await Promise.all(inFlight);
    expect(answered.length).toBeGreaterThan(0);
    expect(answered.length).toBeLessThan(images.length);

    db = new Client({ connectionString: scratch.dsn });
    await db.connect();
    const before = await rows();
    // What the kill left: rows of ingests that never finished, still pending.
    const pendingIds = before.filter((row) => row.status === 'pending').map((row) => row.id);

    // An hour passes (the ingest deadline, and the age below which temporary files are left to
    // writes that may still be in flight in another process).
    await db.query(`UPDATE media_api.media_objects SET upload_expires_at = now() - interval '1 second' WHERE status = 'pending'`);
    const old = new Date(Date.now() - HOUR_AND_A_BIT_MS);
    const leftovers = [
      ...(await filesIn(objectsDir())).filter((name) => PARTIAL.test(name)).map((name) => join(objectsDir(), name)),
      ...(await filesIn(join(dataDir, 'tmp'))).filter((name) => SPOOL.test(name)).map((name) => join(dataDir, 'tmp', name)),
    ];
    for (const path of leftovers) await utimes(path, old, old);
    // Plus one of each kind planted for sure, and a fresh partial: another process's write in flight.
    await mkdir(objectsDir(), { recursive: true });
    await mkdir(join(dataDir, 'tmp'), { recursive: true });
    const planted = [join(objectsDir(), `jan_01kb0000000000000000000000.png.${randomUUID()}.partial`), join(dataDir, 'tmp', `upload-${randomUUID()}`)];
    for (const path of planted) {
      await writeFile(path, 'cut short');
      await utimes(path, old, old);
    }
    const live = join(objectsDir(), `jan_01kb0000000000000000000001.png.${randomUUID()}.partial`);
    await writeFile(live, 'still being written');

    service = await start({ MEDIA_RETENTION_SWEEP_INTERVAL: '1s' });
    let after = await rows();
    for (let i = 0; i < 100; i++) {
      after = await rows();
      const stale = [...(await filesIn(objectsDir())).filter((name) => PARTIAL.test(name)), ...(await filesIn(join(dataDir, 'tmp')))];
      if (after.every((row) => row.status === 'ready') && stale.length === 1) break;
      await new Promise((r) => setTimeout(r, 100));
    }

    // Every row is ready and has its object; every object file has its row.
    expect(after.filter((row) => row.status !== 'ready')).toEqual([]);
    const files = (await filesIn(objectsDir())).filter((name) => !PARTIAL.test(name)).sort();
    expect(files).toEqual(after.map((row) => row.storage_key.replace(/^images\//, '')).sort());
    // Nothing pending survived the sweep; every acknowledged upload did.
    for (const id of pendingIds) expect(after.map((row) => row.id)).not.toContain(id);
    for (const id of answered) expect(after.map((row) => row.id)).toContain(id);
    // No temporary file of a dead write is left; the fresh one (a live write) is.
    expect((await filesIn(objectsDir())).filter((name) => PARTIAL.test(name))).toEqual([live.split('/').pop()]);
    expect(await filesIn(join(dataDir, 'tmp'))).toEqual([]);
    await rm(live);

    // The owner's usage counts exactly what is left.
    const usage = await fetch(`${service.baseUrl}/v1/usage`, { headers: { 'x-media-service-key': SERVICE_KEY, 'x-jan-user-id': user } });
    expect(usage.status).toBe(200);
    expect(await usage.json()).toMatchObject({ objects: after.length });
  });

  it('removes, while it runs and without a restart, temporary files a write left behind once they are an hour old', async () => {
    await service?.stop();
    service = await start({ MEDIA_RETENTION_SWEEP_INTERVAL: '1s' });
    // Left after start-up, as a disk error whose own clean-up failed leaves them: an hour old
    // (the clock that counts is the file's), next to a write in flight.
    await mkdir(objectsDir(), { recursive: true });
    await mkdir(join(dataDir, 'tmp'), { recursive: true });
    const old = new Date(Date.now() - HOUR_AND_A_BIT_MS);
    const dead = [join(objectsDir(), `jan_01kb0000000000000000000002.png.${randomUUID()}.partial`), join(dataDir, 'tmp', `upload-${randomUUID()}`)];
    for (const path of dead) {
      await writeFile(path, 'cut short');
      await utimes(path, old, old);
    }
    const live = join(objectsDir(), `jan_01kb0000000000000000000003.png.${randomUUID()}.partial`);
    await writeFile(live, 'still being written');

    for (let i = 0; i < 50 && dead.some((path) => existsSync(path)); i++) await new Promise((r) => setTimeout(r, 100));
    expect(dead.filter((path) => existsSync(path))).toEqual([]);
    expect(existsSync(live)).toBe(true);
    await rm(live);
    // Requests are answered meanwhile.
    expect((await fetch(`${service.baseUrl}/readyz`)).status).toBe(200);
  });
});
