import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { startTestApp, type TestApp } from '../support/test-app';
import { dataUrl, pngImage, uniqueUser } from '../support/images';

const ADMIN_KEY = 'e2e-admin-key-0123456789abcdef';

describe('Idempotency-Key', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ env: { MEDIA_ADMIN_KEY: ADMIN_KEY } });
  });
  afterAll(async () => {
    await app?.close();
  });

  const ingest = (user: string, body: unknown, key?: string) =>
    app.call('/v1/media', { method: 'POST', user, body: JSON.stringify(body), headers: key ? { 'idempotency-key': key } : {} });

  it('replays the first answer for a repeated key (deduped stays false), per caller', async () => {
    const user = uniqueUser();
    const body = { source: { type: 'data_url', data_url: dataUrl(await pngImage(900)) } };
    const first = (await (await ingest(user, body, 'retry-1')).json()) as any;
    const replay = (await (await ingest(user, body, 'retry-1')).json()) as any;
    expect(replay).toEqual(first);
    expect(replay.deduped).toBe(false);

    const fresh = (await (await ingest(user, body, 'retry-2')).json()) as any;
    expect(fresh).toMatchObject({ id: first.id, deduped: true });

    const other = uniqueUser();
    const theirs = (await (await ingest(other, body, 'retry-1')).json()) as any;
    expect(theirs.id).not.toBe(first.id);
  });

  it('forgets failures, so a retry after a rejection runs again', async () => {
    const user = uniqueUser();
    const bad = await ingest(user, { source: { type: 'nope' } }, 'k-fail');
    expect(bad.status).toBe(400);
    const good = await ingest(user, { source: { type: 'data_url', data_url: dataUrl(await pngImage(901)) } }, 'k-fail');
    expect(good.status).toBe(200);
  });

  it('refuses a key sent again with another body, alone or concurrently, and stores nothing for it', async () => {
    const user = uniqueUser();
    const a = { source: { type: 'data_url', data_url: dataUrl(await pngImage(902)) } };
    const b = { source: { type: 'data_url', data_url: dataUrl(await pngImage(903)) } };
    const first = await ingest(user, a, 'k-reuse');
    expect(first.status).toBe(200);
    const reused = await ingest(user, b, 'k-reuse');
    expect(reused.status).toBe(422);
    expect(await reused.json()).toMatchObject({ code: 'idempotency_key_reused' });
    // The first body still replays.
    expect(((await (await ingest(user, a, 'k-reuse')).json()) as any).id).toBe(((await first.json()) as any).id);

    const bodies = await Promise.all([904, 905, 906].map(async (seed) => ({ source: { type: 'data_url', data_url: dataUrl(await pngImage(seed)) } })));
    const answers = await Promise.all(bodies.map((body) => ingest(user, body, 'k-race')));
    expect(answers.map((r) => r.status).sort()).toEqual([200, 422, 422]);
    const usage = (await (await app.call('/v1/usage', { user })).json()) as { objects: number };
    expect(usage.objects).toBe(2);
  });

  it('keeps one key on complete of two ids apart: each completes', async () => {
    const user = uniqueUser();
    const ids: string[] = [];
    for (const seed of [910, 911]) {
      const prepared = (await (await app.call('/v1/media/prepare-upload', { method: 'POST', user, body: JSON.stringify({ mime_type: 'image/png' }) })).json()) as any;
      expect((await fetch(prepared.upload_url, { method: 'PUT', headers: prepared.headers, body: await pngImage(seed) })).status).toBe(200);
      ids.push(prepared.id);
    }
    for (const id of ids) {
      const done = await app.call(`/v1/media/${id}/complete`, { method: 'POST', user, headers: { 'idempotency-key': 'k-complete' } });
      expect(done.status).toBe(200);
      expect(((await done.json()) as any).id).toBe(id);
    }
  });

  it("never answers one user's multipart upload with another's when a service names them only in the form", async () => {
    // Two images of one length: a multipart body is told apart by its length only.
    const [red, blue] = await Promise.all([0xff0000, 0x0000ff].map((rgb) => sharp({ create: { width: 20, height: 20, channels: 3, background: `#${rgb.toString(16).padStart(6, '0')}` } }).png().toBuffer()));
    expect(red.length).toBe(blue.length);
    const upload = (user: string, image: Buffer) => {
      const form = new FormData();
      form.append('user_id', user);
      form.append('file', new Blob([image], { type: 'image/png' }), 'x.png');
      return app.call('/v1/media/upload', { method: 'POST', body: form, headers: { 'idempotency-key': 'k-form-user' } });
    };
    // Users of one length too, so the two bodies have the same length.
    const alice = uniqueUser('alice');
    const bobby = uniqueUser('bobby');
    const first = (await (await upload(alice, red)).json()) as any;
    const second = await upload(bobby, blue);
    expect(second.status).toBe(200);
    const answer = (await second.json()) as any;
    expect(answer.id).not.toBe(first.id);
    expect(answer.sha256).toBe(createHash('sha256').update(blue).digest('hex'));
    const bobs = (await (await app.call(`/v1/media/${answer.id}/metadata`, { user: bobby })).json()) as any;
    expect(bobs.id).toBe(answer.id);
  });

  it('replays an admin purge that deletes, so a retry after a lost answer still lists every object the first one deleted; a dry run runs again', async () => {
    const user = uniqueUser();
    const ids: string[] = [];
    for (const seed of [920, 921, 922]) ids.push(((await (await ingest(user, { source: { type: 'data_url', data_url: dataUrl(await pngImage(seed)) } })).json()) as any).id);
    const purge = (dryRun: boolean, key: string) =>
      app.call('/v1/admin/media/purge', {
        method: 'POST',
        key: null,
        headers: { 'x-media-admin-key': ADMIN_KEY, 'idempotency-key': key },
        body: JSON.stringify({ ids, dry_run: dryRun }),
      });
    expect(((await (await purge(true, 'purge-dry')).json()) as any).count).toBe(3);
    const first = (await (await purge(false, 'purge-batch-1')).json()) as any;
    expect(first).toMatchObject({ count: 3, dry_run: false });
    expect([...first.purged].sort()).toEqual([...ids].sort());
    // What the SDK's retry of the same batch gets (jan media purge reports from it).
    expect(await (await purge(false, 'purge-batch-1')).json()).toEqual(first);
    for (const id of ids) expect((await app.call(`/v1/media/${id}`, { user })).status).toBe(404);
    // A dry run is read-only and not kept: a repeat answers what matches now.
    expect(((await (await purge(true, 'purge-dry')).json()) as any).count).toBe(0);
  });

  it('refuses a malformed key', async () => {
    const res = await ingest(uniqueUser(), { source: { type: 'data_url', data_url: dataUrl(await pngImage(902)) } }, 'x'.repeat(300));
    expect(res.status).toBe(400);
  });
});
