import { Readable } from 'node:stream';
import type { Principal } from '../../access/principal';
import { FixedQuotaPolicy } from '../../ports/quota-policy';
import { codeOf, createUseCaseTestbed, pngBytes } from '../../testing';
import { PURGE_MAX_PER_CALL } from './admin-media';

const alice: Principal = { kind: 'user', subject: 'alice' };
const bob: Principal = { kind: 'user', subject: 'bob' };
const ops: Principal = { kind: 'admin', adminId: 'ops', actingFor: null };
const llmApi: Principal = { kind: 'service', serviceId: 'llm-api', actingFor: null };

function setup(quota = new FixedQuotaPolicy()) {
  return createUseCaseTestbed({ quota, policy: { inline: { enabled: false, maxImageBytes: 1, maxRequestBytes: 1 } } });
}

describe('quotas', () => {
  it('refuses the object past the count limit before storing it, while dedupe hits stay free', async () => {
    const t = setup(new FixedQuotaPolicy({ maxObjects: 2, maxBytes: 0 }));
    const first = await t.upload(alice, pngBytes('1'));
    await t.upload(alice, pngBytes('2'));
    expect(await codeOf(t.upload(alice, pngBytes('3')))).toBe('quota_exceeded');
    expect(t.storage.objects.size).toBe(2);
    expect((await t.upload(alice, pngBytes('1'))).media.id).toBe(first.media.id);
    // Another owner has a quota of its own.
    await t.upload(bob, pngBytes('3'));
    expect(t.events.ofType('ingest.rejected')).toEqual([expect.objectContaining({ code: 'quota_exceeded' })]);
  });

  it('counts bytes, and gives them back when an object is deleted', async () => {
    const t = setup(new FixedQuotaPolicy({ maxObjects: 0, maxBytes: 30 }));
    const a = await t.upload(alice, pngBytes('0123456789'));
    expect(await codeOf(t.upload(alice, pngBytes('abcdefghijklmn')))).toBe('quota_exceeded');
    await t.manage.delete(alice, a.media.id);
    await t.upload(alice, pngBytes('abcdefghijklmn'));
    expect(await t.repository.usage('alice')).toEqual({ objects: 1, bytes: 22 });
  });

  it('counts a direct-upload reservation, and checks the bytes that arrive on complete', async () => {
    const t = setup(new FixedQuotaPolicy({ maxObjects: 1, maxBytes: 12 }));
    const prepared = await t.direct.prepare({ principal: alice, mimeType: 'image/png' });
    expect(await codeOf(t.direct.prepare({ principal: alice, mimeType: 'image/png' }))).toBe('quota_exceeded');
    await t.storage.put(prepared.media.storageKey, Readable.from([pngBytes('too many bytes')]), { contentType: 'image/png' });
    expect(await codeOf(t.direct.complete(alice, prepared.media.id))).toBe('quota_exceeded');
    // The refused reservation and its bytes are gone, and so is their usage.
    expect(t.repository.rows.size).toBe(0);
    expect(await t.repository.usage('alice')).toEqual({ objects: 0, bytes: 0 });
  });
});

describe('AdminMedia', () => {
  it('is for admins only, answering others as if the object did not exist', async () => {
    const t = setup();
    const { media } = await t.upload(alice, pngBytes('x'));
    for (const principal of [alice, bob, llmApi]) {
      expect(await codeOf(t.admin.describe(principal, media.id))).toBe('media_not_found');
      expect(await codeOf(t.admin.reissue(principal, media.id))).toBe('media_not_found');
      expect(await codeOf(t.admin.purge(principal, { ids: [media.id] }))).toBe('media_not_found');
      expect(await codeOf(t.admin.list(principal, {}))).toBe('media_not_found');
    }
    expect(t.repository.rows.size).toBe(1);
  });

  it('describes any object with its recent audit entries', async () => {
    const t = setup();
    const { media } = await t.upload(alice, pngBytes('x'));
    await t.audit.append({ actorKind: 'user', actorId: 'alice', action: 'media.ingest', mediaId: media.id, outcome: 'success' });
    const described = await t.admin.describe(ops, media.id);
    expect(described.media.ownerId).toBe('alice');
    expect(described.events).toEqual([expect.objectContaining({ action: 'media.ingest', mediaId: media.id })]);
  });

  it('pages through objects by id with a cursor, optionally for one owner', async () => {
    const t = setup();
    for (let i = 0; i < 5; i++) await t.upload(alice, pngBytes(`a${i}`));
    await t.upload(bob, pngBytes('b'));
    const first = await t.admin.list(ops, { owner: 'alice', limit: 2 });
    const second = await t.admin.list(ops, { owner: 'alice', limit: 2, cursor: first.nextCursor! });
    const third = await t.admin.list(ops, { owner: 'alice', limit: 2, cursor: second.nextCursor! });
    const ids = [...first.items, ...second.items, ...third.items].map((m) => m.id);
    expect(ids).toEqual([...ids].sort());
    expect(new Set(ids).size).toBe(5);
    expect(third.nextCursor).toBeNull();
    expect((await t.admin.list(ops, {})).items).toHaveLength(6);
    expect(await codeOf(t.admin.list(ops, { cursor: 'nope' }))).toBe('invalid_request');
  });

  it('purges by ids, owner or expiry (filters combine), dry runs delete nothing, and an empty request is refused', async () => {
    const t = setup();
    const a1 = (await t.upload(alice, pngBytes('a1'))).media;
    const a2 = (await t.upload(alice, pngBytes('a2'))).media;
    const b1 = (await t.upload(bob, pngBytes('b1'))).media;
    expect(await codeOf(t.admin.purge(ops, {}))).toBe('invalid_request');

    const dry = await t.admin.purge(ops, { owner: 'alice', dryRun: true });
    expect(dry).toEqual({ purged: [a1.id, a2.id], failed: [], dryRun: true, truncated: false });
    expect(t.repository.rows.size).toBe(3);

    expect((await t.admin.purge(ops, { ids: [b1.id, 'jan_nonexistent'], owner: 'alice' })).purged).toEqual([]);
    expect((await t.admin.purge(ops, { expired: true })).purged).toEqual([]);
    t.clock.advance(31 * 86_400_000);
    await t.manage.setPinned(alice, a2.id, true);
    expect((await t.admin.purge(ops, { expired: true, owner: 'alice' })).purged).toEqual([a1.id]);
    expect((await t.admin.purge(ops, { ids: [b1.id.toUpperCase()] })).purged).toEqual([b1.id]);
    expect([...t.repository.rows.keys()]).toEqual([a2.id]);
    expect(t.events.ofType('media.deleted').map((e) => e.reason)).toEqual(['purge', 'purge']);
    expect(PURGE_MAX_PER_CALL).toBeGreaterThan(1000);
  });

  it('reads null purge filters as absent ones, and refuses an owner filter no owner can match before any query', async () => {
    const t = setup();
    const a1 = (await t.upload(alice, pngBytes('a1'))).media;
    const asSent = (filters: Record<string, unknown>) => filters as { ids?: string[]; owner?: string; expired?: boolean };
    expect((await t.admin.purge(ops, asSent({ ids: null, expired: null, owner: 'alice', dryRun: true }))).purged).toEqual([a1.id]);
    expect(await codeOf(t.admin.purge(ops, asSent({ ids: null, owner: null, expired: null })))).toBe('invalid_request');
    expect(await codeOf(t.admin.purge(ops, { owner: 'alice\u0000', dryRun: true }))).toBe('invalid_request');
    expect(await codeOf(t.admin.list(ops, { owner: 'a\u0001b' }))).toBe('invalid_request');
    expect(await codeOf(t.admin.usage(ops, 'alice\u0000'))).toBe('invalid_request');
    expect((await t.admin.usage(ops, 'ü🎉')).usage).toBeDefined();
  });

  it('reissues a fresh URL outside the cache, within the allowed lifetime', async () => {
    const t = setup();
    const { media } = await t.upload(alice, pngBytes('x'));
    const cached = await t.presign.presign(alice, media.id);
    const signs = t.storage.signCount;
    const fresh = await t.admin.reissue(ops, media.id, 60);
    expect(t.storage.signCount).toBe(signs + 1);
    expect(fresh.signed.url).not.toBe(cached.signed.url);
    expect(fresh.signed.expiresAt).toEqual(new Date(t.clock.now().getTime() + 60_000));
    expect(await codeOf(t.admin.reissue(ops, media.id, 0))).toBe('invalid_request');
    expect(await codeOf(t.admin.reissue(ops, media.id, 8 * 86_400))).toBe('invalid_request');
    expect(t.events.ofType('media.reissued')).toEqual([expect.objectContaining({ ttlSeconds: 60 })]);
  });

  it('reports usage with the limits that apply', async () => {
    const t = setup(new FixedQuotaPolicy({ maxBytes: 100, maxObjects: 3 }));
    await t.upload(alice, pngBytes('x'));
    expect(await t.admin.usage(ops, 'alice')).toEqual({ usage: { objects: 1, bytes: 9 }, limits: { maxBytes: 100, maxObjects: 3 } });
  });
});
