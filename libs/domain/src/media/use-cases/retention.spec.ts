import type { Principal } from '../../access/principal';
import { codeOf, createUseCaseTestbed, pngBytes } from '../../testing';
import { DomainError } from '../errors';

const alice: Principal = { kind: 'user', subject: 'alice' };
const ops: Principal = { kind: 'admin', adminId: 'ops', actingFor: null };
const DAY = 86_400_000;

describe('retention against a concurrent pin', () => {
  it('keeps an object pinned after the sweep read its batch', async () => {
    const t = createUseCaseTestbed();
    const { media } = await t.upload(alice, pngBytes('pinned-late'));
    t.clock.advance(31 * DAY);
    const findExpired = t.repository.findExpired.bind(t.repository);
    t.repository.findExpired = async (now, limit) => {
      const rows = await findExpired(now, limit);
      // The owner's PUT /pin lands between the sweep's read and its delete.
      if (rows.some((m) => m.id === media.id) && !t.repository.rows.get(media.id)!.pinned) await t.manage.setPinned(alice, media.id, true);
      return rows;
    };

    await t.manage.purgeExpired();

    expect(t.repository.rows.get(media.id)).toMatchObject({ status: 'ready', pinned: true, retentionUntil: null });
    expect(t.storage.objects.has(media.storageKey)).toBe(true);
    expect(t.events.ofType('media.deleted')).toEqual([]);
  });

  it('claims the row before it removes the bytes: a pin during the removal is refused, never answered 200', async () => {
    const t = createUseCaseTestbed();
    const { media } = await t.upload(alice, pngBytes('pinned-during'));
    t.clock.advance(31 * DAY);
    const pinDuringDelete: string[] = [];
    const storageDelete = t.storage.delete.bind(t.storage);
    t.storage.delete = async (key) => {
      if (key === media.storageKey) {
        expect(t.repository.rows.get(media.id)?.status).not.toBe('ready');
        pinDuringDelete.push(await codeOf(t.manage.setPinned(alice, media.id, true)));
      }
      return storageDelete(key);
    };

    await t.manage.purgeExpired();

    expect(pinDuringDelete).toEqual(['media_not_found']);
    expect(t.repository.rows.has(media.id)).toBe(false);
    expect(t.storage.objects.has(media.storageKey)).toBe(false);
    expect(t.events.ofType('media.deleted')).toEqual([expect.objectContaining({ reason: 'retention' })]);
  });

  it('leaves a claimed row, not an orphaned object, when the bytes cannot be removed; the next sweep finishes it', async () => {
    const t = createUseCaseTestbed();
    const { media } = await t.upload(alice, pngBytes('stuck'));
    t.clock.advance(31 * DAY);
    const storageDelete = t.storage.delete.bind(t.storage);
    let failing = true;
    t.storage.delete = async (key) => {
      if (failing && key === media.storageKey) throw new Error('disk on fire');
      return storageDelete(key);
    };

    await t.manage.purgeExpired().catch(() => undefined);
    expect(t.repository.rows.get(media.id)).toMatchObject({ status: 'pending' });
    // Claimed: no longer pinnable, served or a dedupe twin, and gone to its owner's reads (metadata,
    // complete); an admin still sees it lingering. The owner's DELETE tries the removal again
    // rather than answering 404, which a client retrying a failed DELETE would take for success.
    expect(await codeOf(t.manage.setPinned(alice, media.id, true))).toBe('media_not_found');
    expect(await codeOf(t.read(alice, media.id))).toBe('media_not_found');
    expect(await codeOf(t.open.describe(alice, media.id))).toBe('media_not_found');
    expect(await codeOf(t.direct.complete(alice, media.id))).toBe('media_not_found');
    await expect(t.manage.delete(alice, media.id)).rejects.toThrow('disk on fire');
    expect((await t.admin.describe(ops, media.id)).media.id).toBe(media.id);
    // Both failed attempts are recorded, so an admin can see why it lingers.
    expect(t.events.ofType('media.delete_failed').map((e) => [e.reason, e.code])).toEqual([
      ['retention', 'internal_error'],
      ['request', 'internal_error'],
    ]);

    failing = false;
    await t.manage.purgeExpired();
    expect(t.repository.rows.has(media.id)).toBe(false);
    expect(t.storage.objects.has(media.storageKey)).toBe(false);
    // The claim left a closed reservation; the deletion is still an expiry, not an abandoned upload.
    expect(t.events.ofType('media.deleted').map((e) => e.reason)).toEqual(['retention']);
  });

  it('counts an abandoned upload whose deletion was retried as upload_expired', async () => {
    const t = createUseCaseTestbed();
    const { id } = (await t.direct.prepare({ principal: alice, mimeType: 'image/png' })).media;
    t.clock.advance(DAY);
    const storageDelete = t.storage.delete.bind(t.storage);
    let failing = true;
    t.storage.delete = async (key) => {
      if (failing) throw new Error('disk on fire');
      return storageDelete(key);
    };
    await t.manage.purgeExpired();
    expect(t.repository.rows.get(id)?.claimedAt).toBeTruthy();

    failing = false;
    await t.manage.purgeExpired();
    expect(t.repository.rows.has(id)).toBe(false);
    expect(t.events.ofType('media.deleted').map((e) => e.reason)).toEqual(['upload_expired']);
  });

  it('keeps an object the owner pinned after the admin expiry purge listed it', async () => {
    const t = createUseCaseTestbed();
    const { media } = await t.upload(alice, pngBytes('admin-race'));
    const other = (await t.upload(alice, pngBytes('admin-race-2'))).media;
    t.clock.advance(31 * DAY);
    const list = t.repository.list.bind(t.repository);
    t.repository.list = async (filter) => {
      const rows = await list(filter);
      if (rows.some((m) => m.id === media.id) && !t.repository.rows.get(media.id)!.pinned) await t.manage.setPinned(alice, media.id, true);
      return rows;
    };

    const result = await t.admin.purge(ops, { expired: true });

    expect(result.purged).toEqual([other.id]);
    expect(t.repository.rows.get(media.id)).toMatchObject({ status: 'ready', pinned: true });
    expect(t.storage.objects.has(media.storageKey)).toBe(true);
  });
});

describe('dedupe and retention', () => {
  it('a dedupe hit keeps the object for another full retention period', async () => {
    const t = createUseCaseTestbed();
    const first = (await t.upload(alice, pngBytes('again'))).media;
    t.clock.advance(29.9 * DAY);
    const again = await t.upload(alice, pngBytes('again'));
    expect(again).toMatchObject({ deduped: true, media: { id: first.id } });
    expect(again.media.retentionUntil).toEqual(new Date(t.clock.now().getTime() + 30 * DAY));

    t.clock.advance(2 * DAY);
    await t.manage.purgeExpired();
    expect(t.repository.rows.get(first.id)?.retentionUntil).toEqual(again.media.retentionUntil);
    expect((await t.read(alice, first.id)).media.id).toBe(first.id);
  });

  it('revives an object past retention that the sweep has not reached yet', async () => {
    const t = createUseCaseTestbed();
    const first = (await t.upload(alice, pngBytes('late'))).media;
    t.clock.advance(31 * DAY);
    const again = await t.upload(alice, pngBytes('late'));
    expect(again).toMatchObject({ deduped: true, media: { id: first.id, retentionUntil: new Date(t.clock.now().getTime() + 30 * DAY) } });
    await t.manage.purgeExpired();
    expect(t.storage.objects.has(first.storageKey)).toBe(true);
  });

  it('leaves a pinned twin pinned, with no retention', async () => {
    const t = createUseCaseTestbed();
    const first = (await t.upload(alice, pngBytes('pinned-twin'))).media;
    await t.manage.setPinned(alice, first.id, true);
    t.clock.advance(40 * DAY);
    expect((await t.upload(alice, pngBytes('pinned-twin'))).media).toMatchObject({ id: first.id, pinned: true, retentionUntil: null });
  });

  it('stores the bytes anew when the sweep takes the twin between the lookup and the answer', async () => {
    const t = createUseCaseTestbed();
    const first = (await t.upload(alice, pngBytes('swept'))).media;
    t.clock.advance(31 * DAY);
    // The dedupe lookup is the pending row's insert (bytes stored as received): the sweep runs
    // right after it found the twin.
    const insert = t.repository.insert.bind(t.repository);
    let swept = false;
    t.repository.insert = async (media, limits, options) => {
      const result = await insert(media, limits, options);
      if (!result.inserted && !swept) {
        swept = true;
        await t.manage.purgeExpired();
      }
      return result;
    };

    const again = await t.upload(alice, pngBytes('swept'));

    expect(t.repository.rows.has(first.id)).toBe(false);
    expect(again.deduped).toBe(false);
    expect(again.media.id).not.toBe(first.id);
    expect(t.repository.rows.get(again.media.id)).toMatchObject({ status: 'ready', retentionUntil: new Date(t.clock.now().getTime() + 30 * DAY) });
    expect(t.storage.objects.get(again.media.storageKey)?.data).toEqual(pngBytes('swept'));
  });

  it('complete of a direct upload that dedupes keeps the twin alive, or becomes the object itself when the twin is being deleted', async () => {
    const t = createUseCaseTestbed();
    const first = (await t.upload(alice, pngBytes('direct'))).media;
    t.clock.advance(29.9 * DAY);
    const reserved = (await t.direct.prepare({ principal: alice, mimeType: 'image/png' })).media;
    t.storage.objects.set(`uploads/${reserved.id}.png`, { data: pngBytes('direct'), contentType: 'image/png' });
    const done = await t.direct.complete(alice, reserved.id);
    expect(done).toMatchObject({ deduped: true, media: { id: first.id, retentionUntil: new Date(t.clock.now().getTime() + 30 * DAY) } });

    // Now past that retention: the sweep claims the twin between markReady and the answer.
    t.clock.advance(31 * DAY);
    const second = (await t.direct.prepare({ principal: alice, mimeType: 'image/png' })).media;
    t.storage.objects.set(`uploads/${second.id}.png`, { data: pngBytes('direct'), contentType: 'image/png' });
    const markReady = t.repository.markReady.bind(t.repository);
    t.repository.markReady = async (...args) => {
      const result = await markReady(...args);
      if (!result.inserted && t.repository.rows.get(first.id)?.status === 'ready') await t.manage.purgeExpired();
      return result;
    };
    const completed = await t.direct.complete(alice, second.id);
    expect(completed).toMatchObject({ deduped: false, media: { id: second.id, status: 'ready' } });
    expect(t.repository.rows.has(first.id)).toBe(false);
    expect(t.storage.objects.get(second.storageKey)?.data).toEqual(pngBytes('direct'));
  });

  it('an object past retention is gone for readers before the sweep runs', async () => {
    const t = createUseCaseTestbed();
    const { media } = await t.upload(alice, pngBytes('expired'));
    t.clock.advance(30 * DAY);
    expect(await codeOf(t.read(alice, media.id))).toBe('media_not_found');
    expect(await codeOf(t.presign.presign(alice, media.id))).toBe('media_not_found');
    expect(await codeOf(t.resolve.resolveIds(alice, [media.id]))).toBe('media_not_found');
    expect((await t.resolve.resolveIds(alice, [media.id], { keepUnresolved: true })).unresolved).toEqual([media.id]);
    expect(await codeOf(t.admin.reissue(ops, media.id))).toBe('media_not_found');
    // Its owner still sees and manages it until the sweep takes it.
    expect((await t.open.describe(alice, media.id)).id).toBe(media.id);
  });
});

describe('an object storage refuses to delete', () => {
  function withUndeletable(t: ReturnType<typeof createUseCaseTestbed>, keys: Set<string>) {
    const attempts = new Map<string, number>();
    const storageDelete = t.storage.delete.bind(t.storage);
    t.storage.delete = async (key) => {
      attempts.set(key, (attempts.get(key) ?? 0) + 1);
      if (keys.has(key)) throw new DomainError('storage_unavailable', 'object is under a retention hold');
      return storageDelete(key);
    };
    return attempts;
  }

  it('is skipped and counted; the sweep deletes everything behind it and ends', async () => {
    const t = createUseCaseTestbed();
    const stuck = (await t.upload(alice, pngBytes('stuck'))).media;
    t.clock.advance(1000);
    const rest = [];
    for (let i = 0; i < 5; i++) rest.push((await t.upload(alice, pngBytes(`rest-${i}`))).media);
    t.clock.advance(31 * DAY);
    const attempts = withUndeletable(t, new Set([stuck.storageKey]));

    // Batches of one: the stuck object, oldest, heads the first batch.
    const sweep = await t.manage.purgeExpired(1, 100);

    expect(sweep.removed).toBe(5);
    expect(sweep.failed).toEqual([expect.objectContaining({ id: stuck.id, code: 'storage_unavailable' })]);
    expect(attempts.get(stuck.storageKey)).toBe(1);
    for (const media of rest) expect(t.repository.rows.has(media.id)).toBe(false);
    expect(t.repository.rows.get(stuck.id)).toMatchObject({ status: 'pending' });
    expect(t.storage.objects.has(stuck.storageKey)).toBe(true);
  });

  it('is tried once per sweep and does not hold up objects that expire later', async () => {
    const t = createUseCaseTestbed();
    const stuck = (await t.upload(alice, pngBytes('stuck'))).media;
    t.clock.advance(31 * DAY);
    const attempts = withUndeletable(t, new Set([stuck.storageKey]));
    expect((await t.manage.purgeExpired(1, 100)).failed).toHaveLength(1);

    const later = (await t.upload(alice, pngBytes('later'))).media;
    t.clock.advance(31 * DAY);
    const sweep = await t.manage.purgeExpired(1, 100);
    expect(sweep).toMatchObject({ removed: 1, failed: [expect.objectContaining({ id: stuck.id })] });
    expect(t.repository.rows.has(later.id)).toBe(false);
    expect(attempts.get(stuck.storageKey)).toBe(2);
  });

  it('does not hold up newly expired objects when more of them are stuck than one sweep can try', async () => {
    const t = createUseCaseTestbed();
    const stuck = [];
    for (let i = 0; i < 30; i++) stuck.push((await t.upload(alice, pngBytes(`stuck-${i}`))).media);
    t.clock.advance(31 * DAY);
    const attempts = withUndeletable(t, new Set(stuck.map((media) => media.storageKey)));
    expect((await t.manage.purgeExpired(10, 10)).failed).toHaveLength(30);

    const later = [];
    for (let i = 0; i < 5; i++) later.push((await t.upload(alice, pngBytes(`later-${i}`))).media);
    t.clock.advance(31 * DAY);
    // A budget of 20 rows, fewer than the stuck ones: the new expiries go first.
    const sweep = await t.manage.purgeExpired(10, 2);
    expect(sweep.removed).toBe(5);
    for (const media of later) expect(t.repository.rows.has(media.id)).toBe(false);
    expect(sweep.failed).toHaveLength(15);
    // The stuck ones are still tried in turn, those tried longest ago first.
    t.clock.advance(1000);
    const third = await t.manage.purgeExpired(10, 2);
    expect(third.failed).toHaveLength(20);
    expect(stuck.map((media) => attempts.get(media.storageKey)).sort()).toEqual([...Array(25).fill(2), ...Array(5).fill(3)].sort());
  });

  it('does not fail the admin purge: it is reported per object and the others go', async () => {
    const t = createUseCaseTestbed();
    const stuck = (await t.upload(alice, pngBytes('stuck'))).media;
    const other = (await t.upload(alice, pngBytes('other'))).media;
    t.clock.advance(31 * DAY);
    withUndeletable(t, new Set([stuck.storageKey]));

    const result = await t.admin.purge(ops, { expired: true });

    expect(result).toEqual({ purged: [other.id], failed: [{ id: stuck.id, code: 'storage_unavailable' }], dryRun: false, truncated: false });
    expect(t.repository.rows.has(other.id)).toBe(false);
  });

  it('still ends the sweep when the database fails', async () => {
    const t = createUseCaseTestbed();
    await t.upload(alice, pngBytes('db'));
    t.clock.advance(31 * DAY);
    t.repository.claimForDeletion = async () => {
      throw new DomainError('database_unavailable', 'database is unavailable');
    };
    expect(await codeOf(t.manage.purgeExpired())).toBe('database_unavailable');
  });
});

describe('retention sweep stopped by its signal', () => {
  it('stops after the object it is removing and leaves the rest for the next sweep', async () => {
    const t = createUseCaseTestbed();
    for (const seed of ['stop-1', 'stop-2', 'stop-3']) await t.upload(alice, pngBytes(seed));
    t.clock.advance(31 * DAY);
    const stop = new AbortController();
    const storageDelete = t.storage.delete.bind(t.storage);
    t.storage.delete = async (key) => {
      stop.abort(); // a shutdown begins while the first removal runs
      return storageDelete(key);
    };

    const sweep = await t.manage.purgeExpired(100, 100, { signal: stop.signal });

    expect(sweep).toEqual({ removed: 1, failed: [] });
    expect(t.events.ofType('media.deleted')).toHaveLength(1);
    expect([...t.repository.rows.values()].filter((m) => m.status === 'ready' && !m.claimedAt)).toHaveLength(2);
    t.storage.delete = storageDelete;
    expect(await t.manage.purgeExpired()).toEqual({ removed: 2, failed: [] });
  });
});
