import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RetentionSweeper } from '../../src/modules/media/retention-sweeper';
import { SIGNING_KEYS, startTestApp, type TestApp } from '../support/test-app';
import { dataUrl, uniqueUser } from '../support/images';
import { uniquePng } from '../support/unique-image';

jest.setTimeout(120_000);

/**
 * The retention sweep against real PostgreSQL, the local backend and HTTP: what it deletes, what it
 * keeps, and what a storage that refuses a delete or a second replica sweeping at once leave behind.
 */
describe('retention sweep', () => {
  let app: TestApp;
  beforeAll(async () => {
    // Its own database: the sweep deletes every expired row it finds.
    app = await startTestApp({ env: { MEDIA_RATE_LIMIT: '0' }, ownDatabase: true });
  });
  afterAll(async () => app?.close());

  const query = (sql: string, args: unknown[] = []) => app.running.database.writer.query(sql, args);
  const sweep = (on: TestApp = app) => on.running.app.get(RetentionSweeper).sweep();
  const exists = (path: string) => stat(path).then(() => true, () => false);
  const expire = (ids: string[]) => query(`UPDATE media_api.media_objects SET retention_until = now() - interval '1 minute' WHERE id = ANY($1)`, [ids]);
  const rowsOf = async (ids: string[]) => ((await query('SELECT id FROM media_api.media_objects WHERE id = ANY($1)', [ids])) as { id: string }[]).map((r) => r.id);

  async function upload(user: string): Promise<{ id: string; url: string; file: string }> {
    const res = await app.call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(await uniquePng()) } }) });
    expect(res.status).toBe(200);
    const { id, url } = (await res.json()) as { id: string; url: string };
    const [{ storage_key }] = await query('SELECT storage_key FROM media_api.media_objects WHERE id = $1', [id]);
    return { id, url, file: join(app.dataDir, 'objects', storage_key) };
  }

  /** `media_deleted_total` by reason, from /metrics. */
  async function deletedByReason(): Promise<Record<string, number>> {
    const text = await (await app.call('/metrics')).text();
    const counts: Record<string, number> = {};
    for (const [, reason, n] of text.matchAll(/^media_deleted_total\{reason="([^"]+)"\} (\d+)/gm)) counts[reason] = Number(n);
    return counts;
  }

  it('deletes the expired unpinned object, row and file, and keeps an expired pinned one', async () => {
    const user = uniqueUser('sweep');
    const expired = await upload(user);
    const pinned = await upload(user);
    expect((await app.call(`/v1/media/${pinned.id}/pin`, { method: 'PUT', user })).status).toBe(200);
    await expire([expired.id, pinned.id]);

    await sweep();

    expect(await rowsOf([expired.id, pinned.id])).toEqual([pinned.id]);
    expect(await exists(expired.file)).toBe(false);
    expect((await app.call(`/v1/media/${expired.id}`, { user })).status).toBe(404);
    expect((await fetch(expired.url)).status).toBe(404);
    const resolve = await app.call('/v1/media/resolve', { method: 'POST', user, body: JSON.stringify({ payload: { image: `data:image/png;${expired.id}` } }) });
    expect(resolve.status).toBe(404);
    expect(await resolve.json()).toMatchObject({ code: 'media_not_found', details: { ids: [expired.id] } });
    expect((await app.call(`/v1/media/${pinned.id}`, { user })).status).toBe(200);
    expect(await (await app.call('/v1/usage', { user })).json()).toMatchObject({ objects: 1 });
  });

  it('keeps the row of an object the storage refuses to delete, and the next sweep deletes both, counted as retention', async () => {
    const user = uniqueUser('sweep-stuck');
    const stuck = await upload(user);
    await expire([stuck.id]);
    const before = await deletedByReason();
    // A non-empty directory where the file was: the local backend cannot remove it (as root, a
    // read-only directory would not stop it).
    await rename(stuck.file, `${stuck.file}.held`);
    await mkdir(stuck.file);
    await writeFile(join(stuck.file, 'held'), 'x');
    try {
      await sweep();
      expect(await rowsOf([stuck.id])).toEqual([stuck.id]);
      expect((await app.call(`/v1/media/${stuck.id}`, { user })).status).toBe(404);
      expect(await (await app.call('/v1/usage', { user })).json()).toMatchObject({ objects: 1 });
    } finally {
      await rm(stuck.file, { recursive: true });
      await rename(`${stuck.file}.held`, stuck.file);
    }

    await sweep();

    expect(await rowsOf([stuck.id])).toEqual([]);
    expect(await exists(stuck.file)).toBe(false);
    expect(await (await app.call('/v1/usage', { user })).json()).toMatchObject({ objects: 0, bytes: 0 });
    // An expired object, not an abandoned upload, though its retried row was a closed reservation.
    const after = await deletedByReason();
    expect((after.retention ?? 0) - (before.retention ?? 0)).toBe(1);
    expect(after.upload_expired ?? 0).toBe(before.upload_expired ?? 0);
  });

  it("sweeps a first-use copy like any ready object, leaving its twin's row and file, and the other way round", async () => {
    /** An ingested object and a first-use copy of the same bytes (an old client's reservation used without complete). */
    async function twinAndCopy(user: string) {
      const png = await uniquePng();
      const ingested = await app.call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(png) } }) });
      const original = ((await ingested.json()) as { id: string }).id;
      const prepared = await app.call('/v1/media/prepare-upload', { method: 'POST', user, body: JSON.stringify({ mime_type: 'image/png' }) });
      const { id, upload_url } = (await prepared.json()) as { id: string; upload_url: string };
      expect((await fetch(upload_url, { method: 'PUT', headers: { 'content-type': 'image/png' }, body: png })).status).toBe(200);
      expect((await app.call(`/v1/media/${id}`, { user })).status).toBe(200);
      const files = Object.fromEntries(
        ((await query('SELECT id, storage_key FROM media_api.media_objects WHERE id = ANY($1)', [[original, id]])) as { id: string; storage_key: string }[]).map(
          (r) => [r.id, join(app.dataDir, 'objects', r.storage_key)],
        ),
      );
      expect(Object.keys(files).sort()).toEqual([original, id].sort());
      return { original, copy: id, files, png };
    }
    /** One of the pair expires: the sweep takes it with its file; the other stays, served whole. */
    async function sweepOneKeepOther(user: string, expiring: 'original' | 'copy') {
      const pair = await twinAndCopy(user);
      const gone = pair[expiring];
      const kept = expiring === 'copy' ? pair.original : pair.copy;
      await expire([gone]);
      await sweep();
      expect(await rowsOf([pair.original, pair.copy])).toEqual([kept]);
      expect(await exists(pair.files[gone])).toBe(false);
      expect(await exists(pair.files[kept])).toBe(true);
      expect((await app.call(`/v1/media/${gone}`, { user })).status).toBe(404);
      const served = await app.call(`/v1/media/${kept}`, { user });
      expect(served.status).toBe(200);
      expect(Buffer.from(await served.arrayBuffer()).equals(pair.png)).toBe(true);
      return pair;
    }
    const user = uniqueUser('sweep-copy');
    const first = await sweepOneKeepOther(user, 'copy');
    const second = await sweepOneKeepOther(user, 'original');
    expect(await (await app.call('/v1/usage', { user })).json()).toMatchObject({ objects: 2, bytes: first.png.length + second.png.length });
  });

  it('lets two replicas sweep at once: every expired object deleted once, nothing left behind', async () => {
    const second = await startTestApp({
      env: {
        MEDIA_RATE_LIMIT: '0',
        DB_POSTGRESQL_WRITE_DSN: app.running.config.writeDsn!,
        MEDIA_LOCAL_STORAGE_PATH: join(app.dataDir, 'objects'),
        MEDIA_SERVICE_KEY: app.running.config.serviceKeys[0],
        MEDIA_SIGNING_KEYS: SIGNING_KEYS,
      },
    });
    try {
      const user = uniqueUser('sweep-twice');
      const uploaded = [];
      for (let i = 0; i < 30; i++) uploaded.push(await upload(user));
      const ids = uploaded.map((u) => u.id);
      await expire(ids);

      await Promise.all([sweep(), sweep(second)]);

      expect(await rowsOf(ids)).toEqual([]);
      for (const u of uploaded) expect(await exists(u.file)).toBe(false);
      expect(await (await app.call('/v1/usage', { user })).json()).toMatchObject({ objects: 0, bytes: 0 });
    } finally {
      await second.close();
    }
  });
});
