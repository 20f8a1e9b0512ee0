import type { Principal } from '../../access/principal';
import { codeOf, createUseCaseTestbed, pngBytes } from '../../testing';

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
    // Claimed: no longer pinnable, served or a dedupe twin.
    expect(await codeOf(t.manage.setPinned(alice, media.id, true))).toBe('media_not_found');
    expect(await codeOf(t.open.open(alice, media.id))).toBe('media_not_found');

    failing = false;
    await t.manage.purgeExpired();
    expect(t.repository.rows.has(media.id)).toBe(false);
    expect(t.storage.objects.has(media.storageKey)).toBe(false);
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
