import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { newMediaId } from '@jan/mediaid';
import type { Principal } from '../../access/principal';
import { codeOf, createUseCaseTestbed, pendingMedia, pngBytes } from '../../testing';
import { DomainError } from '../errors';
import { uploadKeyFor } from '../media-object';
import type { MediaPolicy } from '../media-policy';
import { resolveOwner } from './ingest-media';

const alice: Principal = { kind: 'user', subject: 'alice' };
const bob: Principal = { kind: 'user', subject: 'bob' };
const llmApiForAlice: Principal = { kind: 'service', serviceId: 'llm-api', actingFor: 'alice' };
const llmApiForBob: Principal = { kind: 'service', serviceId: 'llm-api', actingFor: 'bob' };
const admin: Principal = { kind: 'admin', adminId: 'ops', actingFor: null };

function setup(overrides: Partial<MediaPolicy> = {}) {
  return createUseCaseTestbed({ policy: overrides });
}

describe('IngestMedia', () => {
  it('stores bytes under images/<id>.<ext> with one row, and dedupes identical bytes per owner', async () => {
    const t = setup();
    const first = await t.upload(alice, pngBytes('a'));
    expect(first.deduped).toBe(false);
    expect(first.media.storageKey).toBe(`images/${first.media.id}.png`);
    expect(first.media.mimeType).toBe('image/png');
    expect(t.storage.objects.get(first.media.storageKey)?.data).toEqual(pngBytes('a'));
    expect(first.media.retentionUntil).toEqual(new Date(t.clock.now().getTime() + 30 * 86_400_000));

    const again = await t.upload(alice, pngBytes('a'));
    expect(again).toMatchObject({ deduped: true, media: { id: first.media.id } });
    expect(t.repository.rows.size).toBe(1);
    expect(t.storage.objects.size).toBe(1);
  });

  it('answers a re-upload of known bytes from the row, without inspecting them again', async () => {
    const t = setup();
    await t.upload(alice, pngBytes('known'));
    const inspections = t.inspector.inspections;
    const again = await t.upload(alice, pngBytes('known'));
    expect(again.deduped).toBe(true);
    expect(t.inspector.inspections).toBe(inspections);
    expect(t.staging.live).toBe(0);
  });

  it('stores new bytes with two repository calls: the dedupe lookup and the pending row in one, then ready', async () => {
    const t = setup();
    await t.upload(alice, pngBytes('warm-up'));
    t.repository.queries = 0;
    const fresh = await t.upload(alice, pngBytes('two-calls'));
    expect(fresh.deduped).toBe(false);
    expect(t.repository.queries).toBe(2);
    t.repository.queries = 0;
    expect((await t.upload(alice, pngBytes('two-calls'))).deduped).toBe(true);
    expect(t.repository.queries).toBe(1);
  });

  it('takes the pending row back when the image turns out corrupt after it went in: no row, no object, the inspector\'s code', async () => {
    const t = setup();
    t.inspector.refuseNext = new DomainError('corrupt_image', 'the image does not decode');
    expect(await codeOf(t.upload(alice, pngBytes('corrupt')))).toBe('corrupt_image');
    expect(t.repository.rows.size).toBe(0);
    expect(t.storage.objects.size).toBe(0);
    expect(t.staging.live).toBe(0);
    expect(await t.repository.usage('alice')).toEqual({ objects: 0, bytes: 0 });
  });

  it('refuses a type outside the allow-list before any database work', async () => {
    const t = setup();
    t.repository.queries = 0;
    expect(await codeOf(t.upload(alice, Buffer.from('plain text, not an image')))).toBe('unsupported_media_type');
    expect(t.repository.queries).toBe(0);
  });

  it('never dedupes across owners', async () => {
    const t = setup();
    const a = await t.upload(alice, pngBytes('same'));
    const b = await t.upload(bob, pngBytes('same'));
    expect(b.deduped).toBe(false);
    expect(b.media.id).not.toBe(a.media.id);
    expect(b.media.ownerId).toBe('bob');
  });

  it('rejects oversize, empty and non-image uploads with stable codes and leaves nothing behind', async () => {
    const t = setup();
    expect(await codeOf(t.upload(alice, Buffer.alloc(2048, 1)))).toBe('payload_too_large');
    expect(await codeOf(t.upload(alice, Buffer.alloc(0)))).toBe('empty_file');
    expect(await codeOf(t.upload(alice, Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>')))).toBe('unsupported_media_type');
    expect(t.repository.rows.size).toBe(0);
    expect(t.storage.objects.size).toBe(0);
    expect(t.staging.live).toBe(0);
    expect(t.events.ofType('ingest.rejected').map((e) => e.code)).toEqual(['payload_too_large', 'empty_file', 'unsupported_media_type']);
  });

  it('holds ingest.accepted back until accept() with deferAcceptance, and an unannounced discard emits no deletion', async () => {
    const t = setup();
    const result = await t.ingest.execute({ principal: llmApiForAlice, source: 'multipart', body: Readable.from([pngBytes('held')]), deferAcceptance: true });
    expect(t.events.ofType('ingest.accepted')).toEqual([]);
    result.accept!();
    result.accept!();
    expect(t.events.ofType('ingest.accepted')).toEqual([expect.objectContaining({ media: result.media, deduped: false })]);

    const undone = await t.ingest.execute({ principal: llmApiForAlice, source: 'multipart', body: Readable.from([pngBytes('undone')]), deferAcceptance: true });
    await t.manage.discardUnannounced(undone.media);
    expect(t.repository.rows.has(undone.media.id)).toBe(false);
    expect(t.storage.objects.has(undone.media.storageKey)).toBe(false);
    expect(t.events.ofType('ingest.accepted')).toHaveLength(1);
    expect(t.events.ofType('media.deleted')).toEqual([]);
    // Without the flag nothing changes: the event goes out with the result.
    expect((await t.upload(alice, pngBytes('plain'))).accept).toBeUndefined();
    expect(t.events.ofType('ingest.accepted')).toHaveLength(2);
  });

  it('leaves no row when storage fails', async () => {
    const t = setup();
    t.storage.failNextPut = new DomainError('storage_unavailable', 'bucket down');
    expect(await codeOf(t.upload(alice, pngBytes('x')))).toBe('storage_unavailable');
    expect(t.repository.rows.size).toBe(0);
  });

  it('removes the object it wrote when the database insert fails', async () => {
    const t = setup();
    t.repository.failNextInsert = new Error('connection reset');
    await expect(t.upload(alice, pngBytes('x'))).rejects.toThrow('connection reset');
    expect(t.storage.objects.size).toBe(0);
    expect(t.staging.live).toBe(0);
  });

  it('answers deduped with the winner and removes its own object when a concurrent twin wins the insert', async () => {
    const t = setup();
    const results = await Promise.all(Array.from({ length: 20 }, () => t.upload(alice, pngBytes('race'))));
    const ids = new Set(results.map((r) => r.media.id));
    expect(ids.size).toBe(1);
    expect(results.filter((r) => !r.deduped)).toHaveLength(1);
    expect(t.repository.rows.size).toBe(1);
    expect(t.storage.objects.size).toBe(1);
  });

  it('records a declared type that differs from the sniffed one', async () => {
    const t = setup();
    await t.ingest.execute({ principal: alice, source: 'multipart', body: Readable.from([pngBytes()]), declaredMimeType: 'image/jpeg' });
    expect(t.events.ofType('ingest.mime_mismatch')).toEqual([expect.objectContaining({ declared: 'image/jpeg', sniffed: 'image/png' })]);
  });
});

describe('resolveOwner', () => {
  it("lets a user's subject win over user_id in the body", () => {
    expect(resolveOwner(alice, 'bob')).toBe('alice');
  });
  it('lets a service act for the user it names, by header or body', () => {
    expect(resolveOwner(llmApiForAlice, undefined)).toBe('alice');
    expect(resolveOwner({ kind: 'service', serviceId: 'llm-api', actingFor: null }, 'carol')).toBe('carol');
    expect(resolveOwner({ kind: 'service', serviceId: 'llm-api', actingFor: null }, undefined)).toBe('service:llm-api');
  });
  it('refuses a body user_id that contradicts the header', () => {
    expect(() => resolveOwner(llmApiForAlice, 'bob')).toThrow(expect.objectContaining({ code: 'invalid_request' }));
  });
  it('holds a body user_id to the header rule: 1-200 printable ASCII characters', () => {
    const llmApi = { kind: 'service', serviceId: 'llm-api', actingFor: null } as const;
    for (const bad of ['a\u0000b', 'tab\there', 'é', 'x'.repeat(201)]) {
      expect(() => resolveOwner(llmApi, bad)).toThrow(expect.objectContaining({ code: 'invalid_request' }));
    }
    expect(resolveOwner(llmApi, 'x'.repeat(200))).toBe('x'.repeat(200));
    expect(resolveOwner(llmApi, '  carol  ')).toBe('carol');
  });
  it('never names the owner of a service\'s or admin\'s own uploads as a user', () => {
    const llmApi = { kind: 'service', serviceId: 'llm-api', actingFor: null } as const;
    const ops = { kind: 'admin', adminId: 'ops', actingFor: null } as const;
    const serviceOwner = resolveOwner(llmApi, undefined);
    const adminOwner = resolveOwner(ops, undefined);
    for (const principal of [llmApi, ops]) {
      for (const named of [serviceOwner, adminOwner, ' service:llm-api']) {
        expect(() => resolveOwner(principal, named)).toThrow(expect.objectContaining({ code: 'invalid_request', message: expect.stringContaining('reserved') }));
      }
    }
    // Named in the header instead (a principal the HTTP layer would refuse, checked here too).
    expect(() => resolveOwner({ kind: 'service', serviceId: 'other', actingFor: serviceOwner }, undefined)).toThrow(expect.objectContaining({ code: 'invalid_request' }));
  });
});

describe('access', () => {
  it('answers the same media_not_found for missing, malformed and foreign ids', async () => {
    const t = setup();
    const { media } = await t.upload(alice, pngBytes('private'));
    for (const [principal, id] of [
      [bob, media.id],
      [llmApiForBob, media.id],
      [alice, newMediaId()],
      [alice, 'jan_nonexistent123'],
    ] as const) {
      expect(await codeOf(t.read(principal, id))).toBe('media_not_found');
      expect(await codeOf(t.presign.presign(principal, id))).toBe('media_not_found');
    }
    expect(t.events.ofType('access.denied')).toHaveLength(4);
  });

  it('lets the owner, a service for the owner, and admins read', async () => {
    const t = setup();
    const { media } = await t.upload(alice, pngBytes('mine'));
    for (const principal of [alice, llmApiForAlice, admin]) {
      const { object } = await t.read(principal, media.id.toUpperCase());
      expect(object.bytes).toBe(media.bytes);
    }
  });

  it('never serves pending objects', async () => {
    const t = setup();
    const { id } = pendingMedia('alice', t.clock.now());
    await t.repository.insert(pendingMedia('alice', t.clock.now(), 60_000, id));
    expect(await codeOf(t.read(alice, id))).toBe('media_not_found');
    expect(await codeOf(t.resolve.resolveIds(alice, [id]))).toBe('media_not_found');
  });
});

describe('ResolveMedia', () => {
  it('replaces both placeholder forms anywhere with one repository query', async () => {
    const t = setup();
    const a = (await t.upload(alice, pngBytes('a'))).media;
    const b = (await t.upload(alice, pngBytes('b'))).media;
    const payload = {
      model: 'gpt',
      [`data:image/png;${a.id}`]: 'keys are left alone',
      messages: [
        { role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;${a.id}` } }] },
        { role: 'user', content: `see data:image/png;base64,${b.id.toUpperCase()} and data:image/png;${a.id}!` },
      ],
      n: 1.5e300,
    };
    t.repository.queries = 0;
    const { payload: out } = await t.resolvePayload(llmApiForAlice, payload);
    expect(t.repository.queries).toBe(1);
    const resolved = out as typeof payload;
    const urlA = (resolved.messages[0].content as { image_url: { url: string } }[])[0].image_url.url;
    expect(urlA).toMatch(/^memory:\/\/images\//);
    expect(resolved.messages[1].content).toMatch(/^see memory:\/\/.+ and memory:\/\/.+!$/);
    expect(Object.keys(resolved)).toContain(`data:image/png;${a.id}`);
    expect(resolved.n).toBe(1.5e300);
    expect(payload.messages[0].content).toEqual([{ type: 'image_url', image_url: { url: `data:image/png;${a.id}` } }]);
  });

  it('returns a payload without placeholders deep-equal and without touching the repository', async () => {
    const t = setup();
    const payload = { messages: [{ role: 'user', content: 'data:image/png;base64,iVBORw0KGgo=' }], list: [1, null, true, 'x'] };
    t.repository.queries = 0;
    const { payload: out } = await t.resolvePayload(alice, payload);
    expect(out).toEqual(payload);
    expect(t.repository.queries).toBe(0);
  });

  it("refuses another user's ids with 404 listing them, or keeps them when asked", async () => {
    const t = setup();
    const mine = (await t.upload(alice, pngBytes('mine'))).media;
    const theirs = (await t.upload(bob, pngBytes('theirs'))).media;
    const payload = { a: `data:image/png;${mine.id}`, b: `data:image/png;${theirs.id}` };
    await expect(t.resolvePayload(alice, payload)).rejects.toMatchObject({ code: 'media_not_found', details: { ids: [theirs.id] } });
    const kept = await t.resolvePayload(alice, payload, { keepUnresolved: true });
    expect(kept.payload).toMatchObject({ b: `data:image/png;${theirs.id}` });
    expect((kept.payload as { a: string }).a).toMatch(/^memory:/);
    expect(kept.unresolved).toEqual([theirs.id]);
  });

  it('reuses cached URLs while more than half their life remains', async () => {
    const t = setup();
    const { media } = await t.upload(alice, pngBytes('hot'));
    const first = await t.resolve.resolveIds(alice, [media.id]);
    t.clock.advance(200_000);
    const second = await t.resolve.resolveIds(alice, [media.id]);
    expect(second.resolved[0].url).toBe(first.resolved[0].url);
    t.clock.advance(150_000);
    const third = await t.resolve.resolveIds(alice, [media.id]);
    expect(third.resolved[0].url).not.toBe(first.resolved[0].url);
    expect(t.cache.hits).toBeGreaterThanOrEqual(1);
  });

  it('inlines images as data URLs within the caps, and refuses beyond them', async () => {
    const t = setup();
    const { media } = await t.upload(alice, pngBytes('inline'));
    const { payload } = await t.resolvePayload(alice, { url: `data:image/png;${media.id}` }, { mode: 'inline' });
    expect(payload).toEqual({ url: `data:image/png;base64,${pngBytes('inline').toString('base64')}` });
    const big = (await t.upload(alice, Buffer.concat([pngBytes('big'), Buffer.alloc(600)]))).media;
    expect(await codeOf(t.resolve.resolveIds(alice, [big.id], { mode: 'inline' }))).toBe('inline_too_large');
    const off = setup({ inline: { enabled: false, maxImageBytes: 1, maxRequestBytes: 1 } });
    expect(await codeOf(off.resolve.resolveIds(alice, [], { mode: 'inline' }))).toBe('invalid_request');
  });

  it('holds inline mode to the per-request cap counting every occurrence as the data URL it becomes', async () => {
    const png = pngBytes('repeated');
    const inlined = `data:image/png;base64,${png.toString('base64')}`.length;
    // Room for two copies of the data URL, not three: one distinct id must not be counted once.
    const t = setup({ inline: { enabled: true, maxImageBytes: 1 << 20, maxRequestBytes: 2 * inlined + 1 } });
    const { media } = await t.upload(alice, png);
    const placeholder = `data:image/png;${media.id}`;
    const two = await t.resolvePayload(alice, [placeholder, { x: placeholder }], { mode: 'inline' });
    expect(JSON.stringify(two.payload).length).toBeGreaterThan(2 * inlined);
    await expect(t.resolvePayload(alice, [placeholder, placeholder, `text ${placeholder} text`], { mode: 'inline' })).rejects.toMatchObject({
      code: 'inline_too_large',
      details: { ids: [], max_request_bytes: 2 * inlined + 1, request_bytes: 3 * inlined },
    });
  });

  it('refuses inline mode on a server without it, whether or not the payload holds a placeholder', async () => {
    const off = setup({ inline: { enabled: false, maxImageBytes: 1, maxRequestBytes: 1 } });
    expect(await codeOf(off.resolvePayload(alice, { text: 'no image here' }, { mode: 'inline' }))).toBe('invalid_request');
    expect(await codeOf(off.resolve.resolveIds(alice, ['garbage'], { mode: 'inline' }))).toBe('invalid_request');
    expect((await off.resolvePayload(alice, { text: 'no image here' }, { mode: 'url' })).payload).toEqual({ text: 'no image here' });
  });

  it('counts a placeholder whose id is no media id as not found, or lists it under keepUnresolved', async () => {
    const t = setup();
    const mine = (await t.upload(alice, pngBytes('beside-malformed'))).media;
    const missing = 'jan_01m8frrvpctvjf8ncfkdc87000';
    const bad = 'jan_8zzzzzzzzzzzzzzzzzzzzzzzzz';
    const payload = { a: `data:image/png;${bad}`, b: `data:image/png;${missing}`, c: `data:image/png;${mine.id}`, d: `data:image/png;${bad}` };
    await expect(t.resolvePayload(alice, payload)).rejects.toMatchObject({ code: 'media_not_found', details: { ids: [bad, missing] } });
    const kept = await t.resolvePayload(alice, payload, { keepUnresolved: true });
    expect(kept.unresolved).toEqual([bad, missing]);
    expect(kept.payload).toMatchObject({ a: payload.a, b: payload.b, d: payload.d });
    expect((kept.payload as { c: string }).c).not.toContain('data:');
  });

  it('counts malformed ids in the ids form as not found', async () => {
    const t = setup();
    await expect(t.resolve.resolveIds(alice, ['jan_nope', 42])).rejects.toMatchObject({ code: 'media_not_found', details: { ids: ['jan_nope', '42'] } });
    // Each once, as a payload lists them: not once per time it was sent.
    await expect(t.resolve.resolveIds(alice, ['jan_nope', 'jan_abc', 'jan_nope'])).rejects.toMatchObject({ details: { ids: ['jan_nope', 'jan_abc'] } });
    const kept = await t.resolve.resolveIds(alice, ['jan_abc', 'jan_abc'], { keepUnresolved: true });
    expect(kept.unresolved).toEqual(['jan_abc']);
  });

  it('lists well-formed missing ids too when a malformed one is among them, and only those', async () => {
    const t = setup();
    const mine = (await t.upload(alice, pngBytes('mine'))).media;
    const missing = 'jan_01m8frrvpctvjf8ncfkdc87000';
    await expect(t.resolve.resolveIds(alice, ['garbage', missing, mine.id])).rejects.toMatchObject({
      code: 'media_not_found',
      details: { ids: ['garbage', missing] },
    });
  });
});

describe('ManageMedia', () => {
  it('pins past retention, unpins with a fresh clock, and purges what expired', async () => {
    const t = setup();
    const keep = (await t.upload(alice, pngBytes('keep'))).media;
    const drop = (await t.upload(alice, pngBytes('drop'))).media;
    const pinned = await t.manage.setPinned(alice, keep.id, true);
    expect(pinned).toMatchObject({ pinned: true, retentionUntil: null });

    t.clock.advance(31 * 86_400_000);
    expect((await t.manage.purgeExpired()).removed).toBe(1);
    expect(t.repository.rows.has(drop.id)).toBe(false);
    expect(t.storage.objects.has(drop.storageKey)).toBe(false);
    expect(t.repository.rows.has(keep.id)).toBe(true);

    const unpinned = await t.manage.setPinned(alice, keep.id, false);
    expect(unpinned.retentionUntil).toEqual(new Date(t.clock.now().getTime() + 30 * 86_400_000));
    expect(t.events.ofType('media.deleted')).toEqual([expect.objectContaining({ reason: 'retention' })]);
  });

  it('reaps direct-upload reservations past their deadline, bytes included', async () => {
    const t = setup();
    const pending = pendingMedia('alice', t.clock.now(), 60_000);
    const { id, storageKey: key } = pending;
    await t.repository.insert(pending);
    t.storage.objects.set(key, { data: pngBytes('half-done'), contentType: 'image/png' });
    expect((await t.manage.purgeExpired()).removed).toBe(0);
    t.clock.advance(61_000);
    expect((await t.manage.purgeExpired()).removed).toBe(1);
    expect(t.repository.rows.has(id)).toBe(false);
    expect(t.storage.objects.has(key)).toBe(false);
    expect(t.events.ofType('media.deleted')).toEqual([expect.objectContaining({ reason: 'upload_expired' })]);
  });

  it("deletes only the caller's own objects, and forgets cached URLs", async () => {
    const t = setup();
    const { media } = await t.upload(alice, pngBytes('gone'));
    await t.presign.presign(alice, media.id);
    expect(t.cache.size).toBe(1);
    expect(await codeOf(t.manage.delete(bob, media.id))).toBe('media_not_found');
    await t.manage.delete(alice, media.id);
    expect(t.cache.size).toBe(0);
    expect(t.storage.objects.size).toBe(0);
    expect(await codeOf(t.read(alice, media.id))).toBe('media_not_found');
  });
});

describe('DirectUpload', () => {
  const put = (t: ReturnType<typeof setup>, key: string, bytes: Buffer) => t.storage.put(key, Readable.from([bytes]), { contentType: 'image/png' });

  it('takes the bytes at the upload key, writes the checked bytes to the object, and no later upload changes them', async () => {
    const t = setup();
    const prepared = await t.direct.prepare({ principal: alice, mimeType: 'image/png' });
    const uploadKey = uploadKeyFor(prepared.media.storageKey);
    expect(uploadKey).toBe(`uploads/${prepared.media.id}.png`);
    expect(prepared.upload.url).toContain(uploadKey);
    await put(t, uploadKey, pngBytes('checked'));
    const done = await t.direct.complete(alice, prepared.media.id);
    expect(done.media.status).toBe('ready');
    expect(t.storage.objects.get(prepared.media.storageKey)?.data).toEqual(pngBytes('checked'));
    expect(t.storage.objects.has(uploadKey)).toBe(false);

    // The upload URL stays valid until it expires; what it writes now never reaches the object.
    await put(t, uploadKey, pngBytes('unchecked'));
    expect(t.storage.objects.get(prepared.media.storageKey)?.data).toEqual(pngBytes('checked'));
    expect(await t.direct.keepsUpload(uploadKey)).toBe(false);
  });

  describe('complete on first use', () => {
    it('serves, presigns and resolves an uploaded reservation its client never completed', async () => {
      const t = setup();
      const read = await t.direct.prepare({ principal: alice, mimeType: 'image/png' });
      await put(t, uploadKeyFor(read.media.storageKey), pngBytes('read'));
      expect((await t.read(alice, read.media.id)).media).toMatchObject({ id: read.media.id, status: 'ready' });
      const signed = await t.direct.prepare({ principal: alice, mimeType: 'image/png' });
      await put(t, uploadKeyFor(signed.media.storageKey), pngBytes('signed'));
      expect((await t.presign.presign(llmApiForAlice, signed.media.id)).media.status).toBe('ready');
      const resolved = await t.direct.prepare({ principal: alice, mimeType: 'image/png' });
      await put(t, uploadKeyFor(resolved.media.storageKey), pngBytes('resolved'));
      const result = await t.resolvePayload(alice, { u: `data:image/png;${resolved.media.id}` });
      expect(result.unresolved).toEqual([]);
      expect(t.repository.rows.get(resolved.media.id)?.status).toBe('ready');
    });

    it("leaves an ingest's pending row and its object alone, and answers 404 as before", async () => {
      const t = setup();
      const bytes = pngBytes('ingest in flight');
      const row = { ...pendingMedia('alice', t.clock.now()), bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
      t.repository.rows.set(row.id, row);
      await put(t, row.storageKey, bytes);
      expect(await codeOf(t.read(alice, row.id))).toBe('media_not_found');
      expect(await codeOf(t.presign.presign(alice, row.id))).toBe('media_not_found');
      expect((await t.resolve.resolveIds(alice, [row.id], { keepUnresolved: true })).unresolved).toEqual([row.id]);
      expect(t.repository.rows.get(row.id)).toEqual(row);
      expect(t.storage.objects.get(row.storageKey)?.data).toEqual(bytes);
      expect(t.events.events.filter((e) => e.type === 'ingest.rejected' || e.type === 'ingest.accepted')).toEqual([]);
    });

    it("completes neither another user's upload nor one past its deadline", async () => {
      const t = setup();
      const prepared = await t.direct.prepare({ principal: alice, mimeType: 'image/png' });
      await put(t, uploadKeyFor(prepared.media.storageKey), pngBytes('not yours'));
      expect(await codeOf(t.read(bob, prepared.media.id))).toBe('media_not_found');
      expect((await t.resolve.resolveIds(llmApiForBob, [prepared.media.id], { keepUnresolved: true })).unresolved).toEqual([prepared.media.id]);
      expect(t.repository.rows.get(prepared.media.id)?.status).toBe('pending');

      t.clock.advance(t.policy.uploadTtlSeconds * 1000);
      expect(await codeOf(t.read(alice, prepared.media.id))).toBe('media_not_found');
      expect(t.repository.rows.get(prepared.media.id)?.status).toBe('pending');
    });
  });

  it('stores the declared filename cleaned as every ingest path does (no control characters, quotes or slashes)', async () => {
    const t = setup();
    const prepared = await t.direct.prepare({ principal: alice, mimeType: 'image/png', filename: ' a\u0000b\r\n"c/d\\e\u007f.png ' });
    expect(prepared.media.filename).toBe('abcde.png');
    expect((await t.direct.prepare({ principal: alice, mimeType: 'image/png', filename: '\u0001\u0002' })).media.filename).toBeNull();
  });

  it('keeps no late upload for a reservation claimed for deletion, even when the claimer\'s clock runs ahead', async () => {
    const t = setup();
    const prepared = await t.direct.prepare({ principal: alice, mimeType: 'image/png' });
    const ahead = new Date(t.clock.now().getTime() + 60_000);
    expect(await t.repository.claimForDeletion(prepared.media.id, ahead)).not.toBeNull();
    expect(await t.direct.keepsUpload(uploadKeyFor(prepared.media.storageKey))).toBe(false);
  });

  it('refuses to pin or unpin a reservation before complete (409), and pins it after', async () => {
    const t = setup();
    const prepared = await t.direct.prepare({ principal: alice, mimeType: 'image/png' });
    expect(await codeOf(t.manage.setPinned(alice, prepared.media.id, true))).toBe('media_not_ready');
    expect(await codeOf(t.manage.setPinned(alice, prepared.media.id, false))).toBe('media_not_ready');
    expect(t.repository.rows.get(prepared.media.id)?.pinned).toBe(false);
    await put(t, uploadKeyFor(prepared.media.storageKey), pngBytes('pin later'));
    await t.direct.complete(alice, prepared.media.id);
    expect((await t.manage.setPinned(alice, prepared.media.id, true)).pinned).toBe(true);
  });

  it('keeps bytes an upload URL wrote only while its reservation is open', async () => {
    const t = setup();
    const open = (await t.direct.prepare({ principal: alice, mimeType: 'image/png' })).media;
    expect(await t.direct.keepsUpload(uploadKeyFor(open.storageKey))).toBe(true);

    // A reservation from before upload keys received its bytes at the object's key; once ready,
    // those are the checked bytes.
    await put(t, open.storageKey, pngBytes('direct'));
    await t.direct.complete(alice, open.id);
    expect(await t.direct.keepsUpload(open.storageKey)).toBe(true);
    expect(await t.direct.keepsUpload(uploadKeyFor(open.storageKey))).toBe(false);

    const late = (await t.direct.prepare({ principal: alice, mimeType: 'image/png' })).media;
    t.clock.advance(t.policy.uploadTtlSeconds * 1000 + 1);
    expect(await t.direct.keepsUpload(uploadKeyFor(late.storageKey))).toBe(false);
    expect(await t.direct.keepsUpload(`uploads/${newMediaId()}.png`)).toBe(false);
    expect(await t.direct.keepsUpload('uploads/not-an-id.png')).toBe(false);
  });

  it('refuses bytes of another size than declared with size_mismatch and {declared_bytes, received_bytes}, and removes them', async () => {
    const t = setup();
    const bytes = pngBytes('sized');
    const prepared = await t.direct.prepare({ principal: alice, mimeType: 'image/png', bytes: bytes.length + 1 });
    await put(t, uploadKeyFor(prepared.media.storageKey), bytes);
    const error = await t.direct.complete(alice, prepared.media.id).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DomainError);
    expect(error).toMatchObject({ code: 'size_mismatch', details: { declared_bytes: bytes.length + 1, received_bytes: bytes.length } });
    expect(Object.keys((error as DomainError).details ?? {}).sort()).toEqual(['declared_bytes', 'received_bytes']);
    expect([...t.storage.objects.keys()].filter((key) => key.includes(prepared.media.id))).toEqual([]);
    expect(t.repository.rows.has(prepared.media.id)).toBe(false);
  });

  it('removes the object it wrote when the id is deleted while complete runs', async () => {
    const t = setup();
    const prepared = await t.direct.prepare({ principal: alice, mimeType: 'image/png' });
    await put(t, uploadKeyFor(prepared.media.storageKey), pngBytes('raced'));
    const markReady = t.repository.markReady.bind(t.repository);
    t.repository.markReady = async (pending, facts, now, limits) => {
      await t.manage.delete(alice, pending.id);
      return markReady(pending, facts, now, limits);
    };
    expect(await codeOf(t.direct.complete(alice, prepared.media.id))).toBe('media_not_found');
    expect([...t.storage.objects.keys()].filter((key) => key.includes(prepared.media.id))).toEqual([]);
    expect(t.repository.rows.has(prepared.media.id)).toBe(false);
  });

  it('answers media_not_found and leaves no object when the id is claimed for deletion while complete runs', async () => {
    const t = setup();
    const prepared = await t.direct.prepare({ principal: alice, mimeType: 'image/png' });
    const id = prepared.media.id;
    await put(t, uploadKeyFor(prepared.media.storageKey), pngBytes('claimed meanwhile'));
    // The owner's DELETE claims the row and removes the bytes while complete verifies; it deletes
    // the row only after complete has tried to mark it ready.
    let reachedRowDelete!: () => void;
    const rowDeleteReached = new Promise<void>((resolve) => (reachedRowDelete = resolve));
    let releaseRowDelete!: () => void;
    const rowDeleteReleased = new Promise<void>((resolve) => (releaseRowDelete = resolve));
    const deleteRow = t.repository.delete.bind(t.repository);
    t.repository.delete = async (rowId) => {
      reachedRowDelete();
      await rowDeleteReleased;
      return deleteRow(rowId);
    };
    let deleting: Promise<unknown> | undefined;
    // The object's write (`putNew`: only if absent).
    const storagePut = t.storage.putNew.bind(t.storage);
    t.storage.putNew = async (key, body, options) => {
      if (key === prepared.media.storageKey && !deleting) {
        deleting = t.manage.delete(alice, id);
        await rowDeleteReached;
      }
      return storagePut(key, body, options);
    };

    const completed = codeOf(t.direct.complete(alice, id));
    await rowDeleteReached;
    const code = await Promise.race([completed, new Promise((resolve) => setTimeout(() => resolve('complete hung'), 1000))]);
    releaseRowDelete();
    await deleting;
    await completed;

    expect(code).toBe('media_not_found');
    expect([...t.storage.objects.keys()].filter((key) => key.includes(id))).toEqual([]);
    expect(t.repository.rows.has(id)).toBe(false);
    // One deletion, reported by the DELETE that made it; the complete was refused.
    expect(t.events.ofType('media.deleted')).toEqual([expect.objectContaining({ reason: 'request' })]);
    expect(t.events.ofType('ingest.accepted')).toEqual([]);
  });

  it('answers media_not_found and leaves no object when the sweep claims the reservation after its deadline passed mid-complete', async () => {
    const t = setup();
    const prepared = await t.direct.prepare({ principal: alice, mimeType: 'image/png' });
    const id = prepared.media.id;
    await put(t, uploadKeyFor(prepared.media.storageKey), pngBytes('expired meanwhile'));
    // The object's write (`putNew`: only if absent).
    const storagePut = t.storage.putNew.bind(t.storage);
    t.storage.putNew = async (key, body, options) => {
      if (key === prepared.media.storageKey) {
        // The deadline passes while the bytes are checked, and a sweep claims the reservation.
        t.clock.advance(t.policy.uploadTtlSeconds * 1000 + 1);
        expect(await t.repository.claimForDeletion(id, t.clock.now(), { onlyIfExpired: true })).not.toBeNull();
      }
      return storagePut(key, body, options);
    };

    expect(await codeOf(t.direct.complete(alice, id))).toBe('media_not_found');
    expect(t.storage.objects.has(prepared.media.storageKey)).toBe(false);
    // The row is the claimer's to delete: the next sweep does, with the upload's bytes.
    expect(t.repository.rows.get(id)).toMatchObject({ status: 'pending' });
    expect((await t.manage.purgeExpired()).removed).toBe(1);
    expect([...t.storage.objects.keys()].filter((key) => key.includes(id))).toEqual([]);
    expect(t.repository.rows.has(id)).toBe(false);
  });

  it('keeps the reservation and its bytes when storage or the database fails, so a retry completes it', async () => {
    const t = setup();
    const prepared = await t.direct.prepare({ principal: alice, mimeType: 'image/png' });
    const uploadKey = uploadKeyFor(prepared.media.storageKey);
    await put(t, uploadKey, pngBytes('kept'));

    const head = t.storage.head.bind(t.storage);
    t.storage.head = async () => {
      throw new DomainError('storage_unavailable', 'storage is not answering');
    };
    expect(await codeOf(t.direct.complete(alice, prepared.media.id))).toBe('storage_unavailable');
    t.storage.head = head;
    expect(t.repository.rows.get(prepared.media.id)?.status).toBe('pending');
    expect(t.storage.objects.has(uploadKey)).toBe(true);

    const markReady = t.repository.markReady.bind(t.repository);
    t.repository.markReady = async () => {
      throw new DomainError('database_unavailable', 'the database is not answering');
    };
    expect(await codeOf(t.direct.complete(alice, prepared.media.id))).toBe('database_unavailable');
    t.repository.markReady = markReady;
    // The object written before the failed update stays (the pending row names it, and another
    // complete may have made the row ready with it meanwhile); so does the upload. The retry
    // finds the object holding the bytes it checked and makes the row ready with it.
    expect(t.storage.objects.get(prepared.media.storageKey)?.data).toEqual(pngBytes('kept'));
    expect(t.storage.objects.has(uploadKey)).toBe(true);

    const done = await t.direct.complete(alice, prepared.media.id);
    expect(done.media.status).toBe('ready');
    expect(t.storage.objects.get(prepared.media.storageKey)?.data).toEqual(pngBytes('kept'));
  });

  it('keeps the object when markReady committed but its answer was lost, and the retry answers the ready row', async () => {
    const t = setup();
    const prepared = await t.direct.prepare({ principal: alice, mimeType: 'image/png' });
    await put(t, uploadKeyFor(prepared.media.storageKey), pngBytes('answer lost'));
    const markReady = t.repository.markReady.bind(t.repository);
    t.repository.markReady = async (...args) => {
      await markReady(...args);
      throw new DomainError('database_unavailable', 'the connection closed before the answer');
    };
    expect(await codeOf(t.direct.complete(alice, prepared.media.id))).toBe('database_unavailable');
    t.repository.markReady = markReady;
    expect(t.repository.rows.get(prepared.media.id)?.status).toBe('ready');
    expect(t.storage.objects.get(prepared.media.storageKey)?.data).toEqual(pngBytes('answer lost'));
    expect((await t.direct.complete(alice, prepared.media.id)).media).toMatchObject({ id: prepared.media.id, status: 'ready' });
  });

  it('removes the object it wrote when the row was claimed for deletion before markReady', async () => {
    const t = setup();
    const prepared = await t.direct.prepare({ principal: alice, mimeType: 'image/png' });
    await put(t, uploadKeyFor(prepared.media.storageKey), pngBytes('claimed meanwhile'));
    const markReady = t.repository.markReady.bind(t.repository);
    t.repository.markReady = async (...args) => {
      await t.repository.claimForDeletion(prepared.media.id, new Date());
      return markReady(...args);
    };
    expect(await codeOf(t.direct.complete(alice, prepared.media.id))).toBe('media_not_found');
    expect(t.storage.objects.has(prepared.media.storageKey)).toBe(false);
  });

  it('answers the rejection, not the failure of its cleanup, and leaves the closed row to the sweep', async () => {
    const t = setup();
    const prepared = await t.direct.prepare({ principal: alice, mimeType: 'image/png', sha256: 'f'.repeat(64) });
    await put(t, uploadKeyFor(prepared.media.storageKey), pngBytes('wrong bytes'));
    t.storage.delete = async () => {
      throw new DomainError('storage_unavailable', 'storage is not answering');
    };
    expect(await codeOf(t.direct.complete(alice, prepared.media.id))).toBe('checksum_mismatch');
    // Closed, so no upload lands on it and the retention sweep removes it with its bytes.
    expect(await t.direct.keepsUpload(uploadKeyFor(prepared.media.storageKey))).toBe(false);
  });

  it('of two overlapping completes that checked different bytes, the first object written stays and the later one answers the row the first made ready', async () => {
    const t = setup();
    const prepared = await t.direct.prepare({ principal: alice, mimeType: 'image/png' });
    const uploadKey = uploadKeyFor(prepared.media.storageKey);
    const first = pngBytes('first upload');
    const second = pngBytes('second upload, longer');
    await put(t, uploadKey, second);
    // The later complete has checked `second`; before it writes, the client uploads `first`
    // again on the same URL and another complete checks, writes and marks ready those bytes.
    const putNew = t.storage.putNew.bind(t.storage);
    let other: Promise<unknown> | undefined;
    t.storage.putNew = async (key, body, options) => {
      if (!other) {
        await put(t, uploadKey, first);
        other = t.direct.complete(alice, prepared.media.id);
        await other;
      }
      return putNew(key, body, options);
    };
    const later = await t.direct.complete(alice, prepared.media.id);
    const winner = (await other) as Awaited<ReturnType<typeof t.direct.complete>>;
    const sha = createHash('sha256').update(first).digest('hex');
    expect(winner.media).toMatchObject({ status: 'ready', sha256: sha, bytes: first.length });
    expect(later).toEqual({ media: winner.media, deduped: false });
    expect(t.storage.objects.get(prepared.media.storageKey)?.data).toEqual(first);
    expect(t.repository.rows.get(prepared.media.id)?.sha256).toBe(sha);
    expect(t.staging.live).toBe(0);
  });

  it('answers media_not_ready, keeping the reservation, while a complete that wrote other bytes first has not marked the row ready', async () => {
    const t = setup();
    const prepared = await t.direct.prepare({ principal: alice, mimeType: 'image/png' });
    const uploadKey = uploadKeyFor(prepared.media.storageKey);
    const first = pngBytes('written first');
    await put(t, uploadKey, pngBytes('checked later'));
    // The other complete's object is there; its row update has not happened yet.
    await put(t, prepared.media.storageKey, first);
    expect(await codeOf(t.direct.complete(alice, prepared.media.id))).toBe('media_not_ready');
    expect(t.repository.rows.get(prepared.media.id)?.status).toBe('pending');
    expect(t.storage.objects.get(prepared.media.storageKey)?.data).toEqual(first);
    expect(t.storage.objects.has(uploadKey)).toBe(true);
    expect(t.staging.live).toBe(0);
  });

  it('takes an object that already holds exactly the checked bytes (its own earlier attempt, whose cleanup failed) and marks the row ready', async () => {
    const t = setup();
    const prepared = await t.direct.prepare({ principal: alice, mimeType: 'image/png' });
    const uploadKey = uploadKeyFor(prepared.media.storageKey);
    const bytes = pngBytes('retried');
    await put(t, uploadKey, bytes);
    const markReady = t.repository.markReady.bind(t.repository);
    const remove = t.storage.delete.bind(t.storage);
    t.repository.markReady = async () => {
      throw new DomainError('database_unavailable', 'the database is not answering');
    };
    t.storage.delete = async () => {
      throw new DomainError('storage_unavailable', 'storage is not answering');
    };
    expect(await codeOf(t.direct.complete(alice, prepared.media.id))).toBe('database_unavailable');
    t.repository.markReady = markReady;
    t.storage.delete = remove;
    expect(t.storage.objects.get(prepared.media.storageKey)?.data).toEqual(bytes);

    const done = await t.direct.complete(alice, prepared.media.id);
    expect(done).toMatchObject({ deduped: false, media: { status: 'ready', sha256: createHash('sha256').update(bytes).digest('hex') } });
    expect(t.storage.objects.get(prepared.media.storageKey)?.data).toEqual(bytes);
    expect(t.storage.objects.has(uploadKey)).toBe(false);
  });

  it('leaves a row that another complete made ready, with its object, when its own check fails', async () => {
    const t = setup();
    const prepared = await t.direct.prepare({ principal: alice, mimeType: 'image/png', sha256: 'f'.repeat(64) });
    await put(t, uploadKeyFor(prepared.media.storageKey), pngBytes('other bytes'));
    await put(t, prepared.media.storageKey, pngBytes('the ready object'));
    // The other complete wins just before this one discards (checksum_mismatch here).
    const closeUpload = t.repository.closeUpload.bind(t.repository);
    t.repository.closeUpload = async (id, now) => {
      await t.repository.markReady(prepared.media, { bytes: 11, sha256: 'e'.repeat(64), mimeType: 'image/png', retentionUntil: null }, now);
      return closeUpload(id, now);
    };
    expect(await codeOf(t.direct.complete(alice, prepared.media.id))).toBe('checksum_mismatch');
    expect(t.repository.rows.get(prepared.media.id)?.status).toBe('ready');
    expect(t.storage.objects.has(prepared.media.storageKey)).toBe(true);
  });
});
