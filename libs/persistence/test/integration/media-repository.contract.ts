import { randomBytes } from 'node:crypto';
import type { InsertResult, MediaObject, MediaRepository } from '@jan/domain';
import { newMediaId, type MediaId } from '@jan/mediaid';

/** What the contract needs from one implementation of the port. */
export interface MediaRepositorySubject {
  repository: MediaRepository;
  /** Statements the repository has sent so far (for "one query" guarantees). */
  queryCount(): number;
  /** Removes every row of these owners, whatever the test left behind. */
  deleteOwners?(ownerIds: readonly string[]): Promise<void>;
}

const DAY = 86_400_000;

/**
 * The behaviour every `MediaRepository` must share, run against PostgreSQL, the embedded engine
 * and the in-memory fake. Each test works under owner ids of its own and dates in a far past of
 * its own, so it can share a database with other test files.
 */
export function mediaRepositoryContract(name: string, open: () => Promise<MediaRepositorySubject>): void {
  describe(`MediaRepository contract: ${name}`, () => {
    let subject: MediaRepositorySubject;
    let repo: MediaRepository;
    let owners: string[] = [];
    let ids: MediaId[] = [];
    /** A random instant between 1900 and 1960: nothing but this test's rows lives there. */
    let epoch: number;

    beforeAll(async () => {
      subject = await open();
      repo = subject.repository;
    });

    beforeEach(() => {
      owners = [];
      ids = [];
      epoch = Date.UTC(1900, 0, 1) + Math.floor(Math.random() * 60 * 365) * DAY;
    });

    afterEach(async () => {
      for (const id of ids) await repo.delete(id);
      await subject.deleteOwners?.(owners);
    });

    const owner = () => {
      const id = `contract-${randomBytes(6).toString('hex')}`;
      owners.push(id);
      return id;
    };
    const sha = () => randomBytes(32).toString('hex');
    const at = (days: number) => new Date(epoch + days * DAY);

    function media(ownerId: string, overrides: Partial<MediaObject> = {}): MediaObject {
      const id = overrides.id ?? newMediaId();
      ids.push(id);
      return {
        id,
        ownerId,
        storageProvider: 'local',
        storageKey: `images/${id}.png`,
        mimeType: 'image/png',
        bytes: 1234,
        sha256: sha(),
        originalSha256: null,
        status: 'ready',
        pinned: false,
        filename: null,
        createdAt: at(0),
        updatedAt: at(0),
        retentionUntil: at(30),
        uploadExpiresAt: null,
        ...overrides,
      };
    }

    function pending(ownerId: string, overrides: Partial<MediaObject> = {}): MediaObject {
      return media(ownerId, { status: 'pending', sha256: null, bytes: 0, uploadExpiresAt: at(1), ...overrides });
    }

    async function insertNew(m: MediaObject): Promise<MediaObject> {
      const result = await repo.insert(m);
      if (!result.inserted) throw new Error(`expected ${m.id} to be inserted, got twin ${result.existing.id}`);
      return result.media;
    }

    function insertedMedia(result: InsertResult): MediaObject {
      if (!result.inserted) throw new Error('expected inserted');
      return result.media;
    }

    describe('insert and find', () => {
      it('round-trips every field', async () => {
        const m = media(owner(), {
          bytes: 9_007_199_254, // beyond 32 bits: bigint must come back as the same number
          originalSha256: sha(),
          filename: 'chat shot – ünïcode.png',
          storageProvider: 's3',
          mimeType: 'image/webp',
          updatedAt: at(1),
        });
        const result = await repo.insert(m);
        expect(result).toEqual({ inserted: true, media: m });
        expect(await repo.findById(m.id)).toEqual(m);
      });

      it('round-trips a pending row with its nulls', async () => {
        const m = pending(owner(), { retentionUntil: null });
        await insertNew(m);
        expect(await repo.findById(m.id)).toEqual(m);
      });

      it('answers null for an unknown id', async () => {
        expect(await repo.findById(newMediaId())).toBeNull();
      });

      it('rejects a second row with the same id', async () => {
        const first = media(owner());
        await insertNew(first);
        await expect(repo.insert({ ...first, sha256: sha() })).rejects.toThrow();
        expect(await repo.findById(first.id)).toEqual(first);
      });
    });

    describe('findByIds', () => {
      it('returns the rows that exist, skipping missing ids, in one query', async () => {
        const me = owner();
        const rows = [media(me), media(me), pending(me), media(owner())];
        for (const m of rows) await insertNew(m);
        const missing = [newMediaId(), newMediaId()];

        const before = subject.queryCount();
        const found = await repo.findByIds([rows[0].id, missing[0], rows[1].id, rows[2].id, rows[3].id, missing[1]]);
        expect(subject.queryCount() - before).toBe(1);

        expect(found.map((m) => m.id).sort()).toEqual(rows.map((m) => m.id).sort());
        for (const m of rows) expect(found.find((f) => f.id === m.id)).toEqual(m);
      });

      it('takes one query for many ids and tolerates repeats', async () => {
        const me = owner();
        const rows = Array.from({ length: 25 }, () => media(me));
        for (const m of rows) await insertNew(m);
        const before = subject.queryCount();
        const found = await repo.findByIds([...rows.map((m) => m.id), rows[0].id, rows[1].id]);
        expect(subject.queryCount() - before).toBe(1);
        expect(new Set(found.map((m) => m.id))).toEqual(new Set(rows.map((m) => m.id)));
      });

      it('answers [] for no ids and for only unknown ids', async () => {
        const before = subject.queryCount();
        expect(await repo.findByIds([])).toEqual([]);
        expect(subject.queryCount() - before).toBeLessThanOrEqual(1);
        expect(await repo.findByIds([newMediaId(), newMediaId()])).toEqual([]);
      });
    });

    describe('findReadyByOwnerAndSha256', () => {
      it('finds the ready row by its stored or its original hash, only for its owner', async () => {
        const me = owner();
        const m = media(me, { originalSha256: sha() });
        await insertNew(m);
        expect(await repo.findReadyByOwnerAndSha256(me, m.sha256!)).toEqual(m);
        expect(await repo.findReadyByOwnerAndSha256(me, m.originalSha256!)).toEqual(m);
        expect(await repo.findReadyByOwnerAndSha256(owner(), m.sha256!)).toBeNull();
        expect(await repo.findReadyByOwnerAndSha256(me, sha())).toBeNull();
      });

      it('ignores pending rows', async () => {
        const me = owner();
        const p = pending(me, { sha256: sha() });
        await insertNew(p);
        expect(await repo.findReadyByOwnerAndSha256(me, p.sha256!)).toBeNull();
      });

      it('answers concurrent lookups as it answers them one by one', async () => {
        const me = owner();
        const other = owner();
        const m = media(me, { originalSha256: sha() });
        const theirs = media(other, { sha256: m.sha256 });
        const p = pending(me, { sha256: sha() });
        for (const row of [m, theirs, p]) await insertNew(row);
        const asked: Array<[string, string]> = [
          [me, m.sha256!],
          [me, m.originalSha256!],
          [other, m.sha256!],
          [other, m.originalSha256!],
          [owner(), m.sha256!],
          [me, p.sha256!],
          [me, sha()],
          [me, m.sha256!],
        ];
        const together = await Promise.all(asked.map(([who, hash]) => repo.findReadyByOwnerAndSha256(who, hash)));
        expect(together).toEqual([m, m, theirs, null, null, null, null, m]);
        for (const [i, [who, hash]] of asked.entries()) {
          expect(await repo.findReadyByOwnerAndSha256(who, hash)).toEqual(together[i]);
        }
      });
    });

    describe('insert unlessTwin', () => {
      const arriving = (ownerId: string, sha256: string, overrides: Partial<MediaObject> = {}) =>
        pending(ownerId, { sha256, bytes: 1234, uploadExpiresAt: at(1), ...overrides });
      const existingOf = (result: InsertResult) => {
        if (result.inserted) throw new Error(`expected a twin, ${result.media.id} was inserted`);
        return result.existing;
      };

      it('inserts the pending row of bytes the owner does not have, and answers the twin of bytes they have', async () => {
        const me = owner();
        const fresh = arriving(me, sha());
        expect(insertedMedia(await repo.insert(fresh, undefined, { unlessTwin: true }))).toEqual(fresh);
        expect(await repo.findById(fresh.id)).toEqual(fresh);

        const stored = await insertNew(media(me));
        const again = arriving(me, stored.sha256!);
        expect(existingOf(await repo.insert(again, undefined, { unlessTwin: true }))).toEqual(stored);
        expect(await repo.findById(again.id)).toBeNull();
      });

      it('finds the twins findReadyByOwnerAndSha256 finds: re-encoded from these bytes, and only ready ones of this owner', async () => {
        const me = owner();
        const reencoded = await insertNew(media(me, { originalSha256: sha() }));
        expect(existingOf(await repo.insert(arriving(me, reencoded.originalSha256!), undefined, { unlessTwin: true }))).toEqual(reencoded);

        const theirs = await insertNew(media(owner()));
        const mine = arriving(me, theirs.sha256!);
        expect(insertedMedia(await repo.insert(mine, undefined, { unlessTwin: true })).id).toBe(mine.id);

        // Another pending row of the same bytes is no twin (the unique index decides at markReady).
        const second = arriving(me, mine.sha256!);
        expect(insertedMedia(await repo.insert(second, undefined, { unlessTwin: true })).id).toBe(second.id);
      });

      it('does not answer a twin claimed for deletion', async () => {
        const me = owner();
        const stored = await insertNew(media(me, { retentionUntil: at(1) }));
        expect(await repo.claimForDeletion(stored.id, at(2), { onlyIfExpired: true })).not.toBeNull();
        const again = arriving(me, stored.sha256!);
        expect(insertedMedia(await repo.insert(again, undefined, { unlessTwin: true })).id).toBe(again.id);
      });

      it('answers concurrent inserts as it answers them one by one', async () => {
        const me = owner();
        const other = owner();
        const stored = await insertNew(media(me, { originalSha256: sha() }));
        const theirs = await insertNew(media(other));
        const shared = sha();
        const asked = [
          arriving(me, stored.sha256!),
          arriving(me, sha()),
          arriving(other, stored.sha256!),
          arriving(me, stored.originalSha256!),
          arriving(other, theirs.sha256!),
          arriving(me, shared),
          arriving(me, shared),
        ];
        const together = await Promise.all(asked.map((row) => repo.insert(row, undefined, { unlessTwin: true })));
        expect(together.map((result) => (result.inserted ? `new ${result.media.id}` : `twin ${result.existing.id}`))).toEqual([
          `twin ${stored.id}`,
          `new ${asked[1].id}`,
          `new ${asked[2].id}`,
          `twin ${stored.id}`,
          `twin ${theirs.id}`,
          `new ${asked[5].id}`,
          `new ${asked[6].id}`,
        ]);
        for (const [i, row] of asked.entries()) expect(await repo.findById(row.id)).toEqual(together[i].inserted ? row : null);
      });

      it('charges the quota for an inserted row only: a twin passes at the limit, new bytes past it are refused', async () => {
        const me = owner();
        const limits = { maxObjects: 1, maxBytes: 0 };
        const stored = await insertNew(media(me));
        expect(existingOf(await repo.insert(arriving(me, stored.sha256!), limits, { unlessTwin: true }))).toEqual(stored);
        const refused = arriving(me, sha());
        await expect(repo.insert(refused, limits, { unlessTwin: true })).rejects.toMatchObject({ code: 'quota_exceeded' });
        expect(await repo.findById(refused.id)).toBeNull();
        expect(await repo.usage(me)).toEqual({ objects: 1, bytes: stored.bytes });
      });
    });

    describe('per-owner dedupe', () => {
      it('returns the existing ready row instead of inserting a twin', async () => {
        const me = owner();
        const first = media(me);
        await insertNew(first);
        const twin = media(me, { sha256: first.sha256, createdAt: at(1), updatedAt: at(1) });
        expect(await repo.insert(twin)).toEqual({ inserted: false, existing: first });
        expect(await repo.findById(twin.id)).toBeNull();
        expect(await repo.usage(me)).toEqual({ objects: 1, bytes: first.bytes });
      });

      it('treats bytes whose re-encoding is already stored as a twin', async () => {
        const me = owner();
        const reencoded = media(me, { originalSha256: sha() });
        await insertNew(reencoded);
        const sameUpload = media(me, { sha256: reencoded.originalSha256 });
        expect(await repo.insert(sameUpload)).toEqual({ inserted: false, existing: reencoded });
      });

      it('keeps one row per owner for the same bytes', async () => {
        const bytes = sha();
        const a = media(owner(), { sha256: bytes });
        const b = media(owner(), { sha256: bytes });
        expect((await repo.insert(a)).inserted).toBe(true);
        expect((await repo.insert(b)).inserted).toBe(true);
        expect(await repo.findReadyByOwnerAndSha256(a.ownerId, bytes)).toEqual(a);
        expect(await repo.findReadyByOwnerAndSha256(b.ownerId, bytes)).toEqual(b);
      });

      it('lets exactly one of 50 concurrent inserts of the same bytes win', async () => {
        const me = owner();
        const bytes = sha();
        const attempts = Array.from({ length: 50 }, (_, i) => media(me, { sha256: bytes, createdAt: at(i / 1000) }));
        const results = await Promise.all(attempts.map((m) => repo.insert(m)));

        const winners = results.filter((r) => r.inserted);
        const losers = results.filter((r): r is Extract<InsertResult, { inserted: false }> => !r.inserted);
        expect(winners).toHaveLength(1);
        expect(losers).toHaveLength(49);
        const winner = insertedMedia(winners[0]);
        for (const lost of losers) expect(lost.existing).toEqual(winner);
        expect(await repo.usage(me)).toEqual({ objects: 1, bytes: winner.bytes });
      });

      it('never lets pending rows collide, with each other or with a ready twin', async () => {
        const me = owner();
        const bytes = sha();
        await insertNew(media(me, { sha256: bytes }));
        await insertNew(pending(me));
        await insertNew(pending(me));
        await insertNew(pending(me, { sha256: bytes }));
        await insertNew(pending(me, { sha256: bytes }));
        expect((await repo.usage(me)).objects).toBe(5);
      });
    });

    describe('markReady', () => {
      const facts = (sha256: string) => ({ bytes: 4321, sha256, mimeType: 'image/jpeg' as const, retentionUntil: at(40) });

      it('turns a pending row into a ready one', async () => {
        const me = owner();
        const p = pending(me, { filename: 'upload.jpg' });
        await insertNew(p);
        const f = facts(sha());
        const result = await repo.markReady(p, f, at(2));
        const expected: MediaObject = { ...p, ...f, status: 'ready', updatedAt: at(2), uploadExpiresAt: null };
        expect(result).toEqual({ inserted: true, media: expected });
        expect(await repo.findById(p.id)).toEqual(expected);
        expect(await repo.findReadyByOwnerAndSha256(me, f.sha256)).toEqual(expected);
      });

      it('returns the ready twin and leaves the pending row untouched', async () => {
        const me = owner();
        const twin = media(me);
        await insertNew(twin);
        const p = pending(me);
        await insertNew(p);
        expect(await repo.markReady(p, facts(twin.sha256!), at(2))).toEqual({ inserted: false, existing: twin });
        expect(await repo.findById(p.id)).toEqual(p);
      });

      it('treats a twin by original hash the same way', async () => {
        const me = owner();
        const twin = media(me, { originalSha256: sha() });
        await insertNew(twin);
        const p = pending(me);
        await insertNew(p);
        expect(await repo.markReady(p, facts(twin.originalSha256!), at(2))).toEqual({ inserted: false, existing: twin });
        expect(await repo.findById(p.id)).toEqual(p);
      });

      it('ignores another owner\'s row with the same bytes', async () => {
        const bytes = sha();
        await insertNew(media(owner(), { sha256: bytes }));
        const p = pending(owner());
        await insertNew(p);
        const result = await repo.markReady(p, facts(bytes), at(2));
        expect(result.inserted).toBe(true);
      });

      it('lets one of two concurrent completions with the same bytes win', async () => {
        const me = owner();
        const a = pending(me);
        const b = pending(me);
        await insertNew(a);
        await insertNew(b);
        const f = facts(sha());
        const results = await Promise.all([repo.markReady(a, f, at(2)), repo.markReady(b, f, at(2))]);
        const winners = results.filter((r) => r.inserted);
        expect(winners).toHaveLength(1);
        const winner = insertedMedia(winners[0]);
        const loser = results.find((r) => !r.inserted);
        expect(loser).toEqual({ inserted: false, existing: winner });
        const loserId = winner.id === a.id ? b.id : a.id;
        expect((await repo.findById(loserId))?.status).toBe('pending');
      });

      it('rejects an unknown id with media_not_found', async () => {
        await expect(repo.markReady({ id: newMediaId(), ownerId: 'nobody' }, facts(sha()), at(2))).rejects.toMatchObject({ code: 'media_not_found' });
      });

      it('refuses a reservation claimed for deletion with media_not_found, whatever the clocks say, even with a ready twin', async () => {
        const me = owner();
        // The sweep claimed it once its deadline had passed, while a complete was still verifying.
        const swept = await insertNew(pending(me, { uploadExpiresAt: at(1) }));
        expect(await repo.claimForDeletion(swept.id, at(60), { onlyIfExpired: true })).not.toBeNull();
        await expect(repo.markReady(swept, facts(sha()), at(61))).rejects.toMatchObject({ code: 'media_not_found' });
        // The owner's DELETE claimed an open one; this complete read its clock earlier.
        const deleted = await insertNew(pending(me, { uploadExpiresAt: at(50) }));
        expect(await repo.claimForDeletion(deleted.id, at(3))).not.toBeNull();
        await expect(repo.markReady(deleted, facts(sha()), at(2))).rejects.toMatchObject({ code: 'media_not_found' });
        // Not answered with a twin either: the reservation is gone for its client.
        const twin = await insertNew(media(me));
        await expect(repo.markReady(deleted, facts(twin.sha256!), at(4))).rejects.toMatchObject({ code: 'media_not_found' });
        for (const row of [swept, deleted]) expect(await repo.findById(row.id)).toMatchObject({ status: 'pending' });
        expect(await repo.findReadyByOwnerAndSha256(me, twin.sha256!)).toEqual(twin);
      });

      it('refuses a reservation whose upload was closed (discarded), so the discard deletes what it closed', async () => {
        const p = await insertNew(pending(owner(), { uploadExpiresAt: at(50) }));
        expect(await repo.closeUpload(p.id, at(2))).toBe(true);
        await expect(repo.markReady(p, facts(sha()), at(1))).rejects.toMatchObject({ code: 'media_not_found' });
        expect(await repo.findById(p.id)).toMatchObject({ status: 'pending', uploadExpiresAt: at(2) });
      });

      it('serializes with a concurrent claim of the same reservation: exactly one of them wins', async () => {
        const me = owner();
        const rows = [];
        for (let i = 0; i < 20; i++) rows.push(await insertNew(pending(me, { uploadExpiresAt: at(1) })));
        const outcomes = await Promise.all(
          rows.map(async (row, i) => {
            // The complete read its clock before the deadline passed; the sweep after it.
            const ready = () => repo.markReady(row, facts(sha()), at(0.5)).then(() => true, () => false);
            const claim = () => repo.claimForDeletion(row.id, at(2), { onlyIfExpired: true }).then((claimed) => claimed !== null);
            const [marked, claimed] = i % 2 ? await Promise.all([ready(), claim()]) : (await Promise.all([claim(), ready()])).reverse();
            return { marked, claimed, row: await repo.findById(row.id) };
          }),
        );
        for (const outcome of outcomes) {
          expect(outcome.marked).not.toBe(outcome.claimed);
          expect(outcome.row).toMatchObject({ status: outcome.marked ? 'ready' : 'pending' });
        }
      });
    });

    describe('setPinned', () => {
      it('pins (no retention) and unpins (new retention)', async () => {
        const m = media(owner());
        await insertNew(m);
        const pinned = await repo.setPinned(m.id, true, null, at(3));
        expect(pinned).toEqual({ ...m, pinned: true, retentionUntil: null, updatedAt: at(3) });
        expect(await repo.findById(m.id)).toEqual(pinned);
        const unpinned = await repo.setPinned(m.id, false, at(33), at(4));
        expect(unpinned).toEqual({ ...m, pinned: false, retentionUntil: at(33), updatedAt: at(4) });
        expect(await repo.findById(m.id)).toEqual(unpinned);
      });

      it('answers null for an unknown id', async () => {
        expect(await repo.setPinned(newMediaId(), true, null, at(1))).toBeNull();
      });

      it('pins an open reservation, but not a closed one (abandoned, or claimed for deletion)', async () => {
        const me = owner();
        const open = await insertNew(pending(me, { uploadExpiresAt: at(5) }));
        const closed = await insertNew(pending(me, { uploadExpiresAt: at(2) }));
        expect(await repo.setPinned(open.id, true, null, at(3))).toMatchObject({ id: open.id, pinned: true });
        expect(await repo.setPinned(closed.id, true, null, at(3))).toBeNull();
        expect(await repo.findById(closed.id)).toEqual(closed);
      });

      it('refuses a row claimed for deletion even when the pin read its clock before the claimer did', async () => {
        const me = owner();
        const expired = await insertNew(media(me, { retentionUntil: at(30) }));
        const claimed = await repo.claimForDeletion(expired.id, at(31), { onlyIfExpired: true });
        expect(claimed).not.toBeNull();
        expect(await repo.setPinned(expired.id, true, null, at(30))).toBeNull();
        expect(await repo.setPinned(expired.id, false, at(60), at(30))).toBeNull();
        // An owner's DELETE of a fresh row, with a pin whose replica's clock lags behind.
        const fresh = await insertNew(media(me, { retentionUntil: at(40) }));
        expect(await repo.claimForDeletion(fresh.id, at(5))).not.toBeNull();
        expect(await repo.setPinned(fresh.id, true, null, at(4))).toBeNull();
        expect(await repo.findById(expired.id)).toEqual(claimed);
        expect(await repo.findById(fresh.id)).toMatchObject({ status: 'pending', pinned: false });
      });
    });

    describe('claimForDeletion', () => {
      it('claims only a row that is still expired, and a claimed row is served, deduped and pinned no more, while the sweep still finds it', async () => {
        const me = owner();
        const expired = await insertNew(media(me, { retentionUntil: at(30) }));
        const pinned = await insertNew(media(me, { pinned: true, retentionUntil: at(5) }));
        const fresh = await insertNew(media(me, { retentionUntil: at(40) }));
        const open = await insertNew(pending(me, { uploadExpiresAt: at(50) }));
        const abandoned = await insertNew(pending(me, { uploadExpiresAt: at(10) }));

        for (const kept of [pinned, fresh, open]) {
          expect(await repo.claimForDeletion(kept.id, at(31), { onlyIfExpired: true })).toBeNull();
          expect(await repo.findById(kept.id)).toEqual(kept);
        }
        expect(await repo.claimForDeletion(newMediaId(), at(31), { onlyIfExpired: true })).toBeNull();

        const claimed: MediaObject = { ...expired, status: 'pending', uploadExpiresAt: at(31), updatedAt: at(31), claimedAt: at(31) };
        expect(await repo.claimForDeletion(expired.id, at(31), { onlyIfExpired: true })).toEqual(claimed);
        expect(await repo.findById(expired.id)).toEqual(claimed);
        expect(await repo.findReadyByOwnerAndSha256(me, expired.sha256!)).toBeNull();
        expect(await repo.setPinned(expired.id, true, null, at(31))).toBeNull();
        expect(await repo.findById(expired.id)).toEqual(claimed);
        // Out of the unique dedupe index: the same bytes can be stored again as a new object.
        expect((await repo.insert(media(me, { sha256: expired.sha256, retentionUntil: at(40) }))).inserted).toBe(true);
        expect((await repo.claimForDeletion(abandoned.id, at(31), { onlyIfExpired: true }))?.status).toBe('pending');
        // A claim that failed later is retried by the sweep, which finds the closed row again.
        expect((await repo.findExpired(at(31), 10)).map((m) => m.id)).toEqual([abandoned.id, expired.id].sort());
        expect((await repo.claimForDeletion(expired.id, at(32), { onlyIfExpired: true }))?.uploadExpiresAt).toEqual(at(32));
      });

      it('claims any row when not asked to check expiry (an operator or owner delete)', async () => {
        const me = owner();
        const pinned = await insertNew(media(me, { pinned: true, retentionUntil: null }));
        const fresh = await insertNew(media(me, { retentionUntil: at(40) }));
        for (const row of [pinned, fresh]) {
          expect(await repo.claimForDeletion(row.id, at(1))).toEqual({ ...row, status: 'pending', uploadExpiresAt: at(1), updatedAt: at(1), claimedAt: at(1) });
        }
        expect(await repo.claimForDeletion(newMediaId(), at(1))).toBeNull();
      });

      it('serializes with a concurrent pin of the same row: exactly one of them wins', async () => {
        const me = owner();
        const rows = [];
        for (let i = 0; i < 20; i++) rows.push(await insertNew(media(me, { retentionUntil: at(30) })));
        const outcomes = await Promise.all(
          rows.map(async (row, i) => {
            const pin = () => repo.setPinned(row.id, true, null, at(31));
            const claim = () => repo.claimForDeletion(row.id, at(31), { onlyIfExpired: true });
            const [pinnedRow, claimedRow] = i % 2 ? await Promise.all([pin(), claim()]) : (await Promise.all([claim(), pin()])).reverse();
            return { pinned: pinnedRow !== null, claimed: claimedRow !== null, row: await repo.findById(row.id) };
          }),
        );
        for (const outcome of outcomes) {
          expect(outcome.pinned).not.toBe(outcome.claimed);
          expect(outcome.row).toMatchObject(outcome.pinned ? { status: 'ready', pinned: true } : { status: 'pending', pinned: false });
        }
      });

      it('serializes with a concurrent pin whose clock is behind the claimer\'s: exactly one of them wins', async () => {
        const me = owner();
        const rows = [];
        for (let i = 0; i < 20; i++) rows.push(await insertNew(media(me, { retentionUntil: at(30) })));
        const outcomes = await Promise.all(
          rows.map(async (row, i) => {
            // The sweep uses one `now` for its whole run; the pin's request read the clock later,
            // on a replica whose clock is a day behind.
            const pin = () => repo.setPinned(row.id, true, null, at(30.5));
            const claim = () => repo.claimForDeletion(row.id, at(31.5), { onlyIfExpired: true });
            const [pinnedRow, claimedRow] = i % 2 ? await Promise.all([pin(), claim()]) : (await Promise.all([claim(), pin()])).reverse();
            return { pinned: pinnedRow !== null, claimed: claimedRow !== null, row: await repo.findById(row.id) };
          }),
        );
        for (const outcome of outcomes) {
          expect(outcome.pinned).not.toBe(outcome.claimed);
          expect(outcome.row).toMatchObject(outcome.pinned ? { status: 'ready', pinned: true } : { status: 'pending', pinned: false });
        }
      });

      it('can claim a claimed row again (a sweep retrying a failed deletion), which stays refused to pins and completes', async () => {
        const me = owner();
        const row = await insertNew(media(me, { retentionUntil: at(30) }));
        expect(await repo.claimForDeletion(row.id, at(31), { onlyIfExpired: true })).not.toBeNull();
        const again = await repo.claimForDeletion(row.id, at(32), { onlyIfExpired: true });
        expect(again).toMatchObject({ status: 'pending', uploadExpiresAt: at(32) });
        expect(await repo.claimForDeletion(row.id, at(33))).toMatchObject({ uploadExpiresAt: at(33) });
        expect(await repo.setPinned(row.id, true, null, at(1))).toBeNull();
        await expect(repo.markReady(row, { bytes: 1, sha256: sha(), mimeType: 'image/png', retentionUntil: at(90) }, at(1))).rejects.toMatchObject({ code: 'media_not_found' });
        expect(await repo.keepAlive(row.id, at(90), at(1))).toBeNull();
      });
    });

    describe('keepAlive', () => {
      it('moves retention out (never in) on ready rows, leaves pinned and forever rows alone, and refuses claimed ones', async () => {
        const me = owner();
        const expiring = await insertNew(media(me, { retentionUntil: at(30) }));
        const later = await insertNew(media(me, { retentionUntil: at(90) }));
        const pinned = await insertNew(media(me, { pinned: true, retentionUntil: null }));
        const forever = await insertNew(media(me, { retentionUntil: null }));
        const open = await insertNew(pending(me, { uploadExpiresAt: at(50) }));

        expect(await repo.keepAlive(expiring.id, at(61), at(31))).toEqual({ ...expiring, retentionUntil: at(61), updatedAt: at(31) });
        expect((await repo.findById(expiring.id))?.retentionUntil).toEqual(at(61));
        expect(await repo.findExpired(at(32), 10)).toEqual([]);
        expect(await repo.keepAlive(later.id, at(61), at(31))).toEqual({ ...later, updatedAt: at(31) });
        expect(await repo.keepAlive(pinned.id, at(61), at(31))).toEqual(pinned);
        expect(await repo.keepAlive(forever.id, at(61), at(31))).toEqual(forever);
        // Retention turned off since: the twin is kept forever, as a new upload would be.
        expect(await repo.keepAlive(later.id, null, at(32))).toEqual({ ...later, retentionUntil: null, updatedAt: at(32) });
        expect(await repo.keepAlive(open.id, at(61), at(31))).toBeNull();
        expect(await repo.keepAlive(newMediaId(), at(61), at(31))).toBeNull();

        const claimed = await insertNew(media(me, { retentionUntil: at(30) }));
        await repo.claimForDeletion(claimed.id, at(31), { onlyIfExpired: true });
        expect(await repo.keepAlive(claimed.id, at(61), at(31))).toBeNull();
      });

      it('refuses a row claimed for deletion even when the keep-alive read its clock before the claimer did', async () => {
        const me = owner();
        const row = await insertNew(media(me, { retentionUntil: at(30) }));
        const claimed = await repo.claimForDeletion(row.id, at(31), { onlyIfExpired: true });
        expect(await repo.keepAlive(row.id, at(60), at(30))).toBeNull();
        expect(await repo.keepAlive(row.id, null, at(30))).toBeNull();
        expect(await repo.findById(row.id)).toEqual(claimed);
      });

      it('serializes with a concurrent expiry claim of the same row: exactly one of them wins', async () => {
        const me = owner();
        const rows = [];
        for (let i = 0; i < 20; i++) rows.push(await insertNew(media(me, { retentionUntil: at(30) })));
        const outcomes = await Promise.all(
          rows.map(async (row, i) => {
            const keep = () => repo.keepAlive(row.id, at(61), at(31));
            const claim = () => repo.claimForDeletion(row.id, at(31), { onlyIfExpired: true });
            const [kept, claimed] = i % 2 ? await Promise.all([keep(), claim()]) : (await Promise.all([claim(), keep()])).reverse();
            return { kept: kept !== null, claimed: claimed !== null, row: await repo.findById(row.id) };
          }),
        );
        for (const outcome of outcomes) {
          expect(outcome.kept).not.toBe(outcome.claimed);
          expect(outcome.row).toMatchObject(outcome.kept ? { status: 'ready', retentionUntil: at(61) } : { status: 'pending' });
        }
      });
    });

    describe('closeUpload', () => {
      it("ends a pending row's upload window now, so the sweep takes it, and leaves other rows alone", async () => {
        const me = owner();
        const open = await insertNew(pending(me, { uploadExpiresAt: at(5) }));
        const ready = await insertNew(media(me));
        expect(await repo.closeUpload(open.id, at(2))).toBe(true);
        expect(await repo.findById(open.id)).toEqual({ ...open, uploadExpiresAt: at(2), updatedAt: at(2), claimedAt: at(2) });
        expect(await repo.findExpired(at(2), 10)).toEqual([{ ...open, uploadExpiresAt: at(2), updatedAt: at(2), claimedAt: at(2) }]);
        expect(await repo.closeUpload(ready.id, at(2))).toBe(false);
        expect(await repo.findById(ready.id)).toEqual(ready);
        expect(await repo.closeUpload(newMediaId(), at(2))).toBe(false);
      });

      it('leaves a row claimed for deletion to its claimer', async () => {
        const p = await insertNew(pending(owner(), { uploadExpiresAt: at(50) }));
        const claimed = await repo.claimForDeletion(p.id, at(3));
        expect(await repo.closeUpload(p.id, at(4))).toBe(false);
        expect(await repo.findById(p.id)).toEqual(claimed);
      });
    });

    describe('delete', () => {
      it('deletes once, and says whether a row was there', async () => {
        const m = media(owner());
        await insertNew(m);
        expect(await repo.delete(m.id)).toBe(true);
        expect(await repo.findById(m.id)).toBeNull();
        expect(await repo.delete(m.id)).toBe(false);
      });

      it('frees the bytes for a new upload of the same owner', async () => {
        const me = owner();
        const first = media(me);
        await insertNew(first);
        await repo.delete(first.id);
        const again = media(me, { sha256: first.sha256 });
        expect((await repo.insert(again)).inserted).toBe(true);
      });
    });

    describe('findExpired', () => {
      it('returns ready rows past retention and pending rows past their deadline, those that expired first first', async () => {
        const me = owner();
        const expiredReady = media(me, { createdAt: at(2), retentionUntil: at(10) });
        const expiredPending = pending(me, { createdAt: at(1), uploadExpiresAt: at(11) });
        const expiredAtNow = media(me, { createdAt: at(3), retentionUntil: at(20) });
        const rows = [
          expiredReady,
          expiredPending,
          expiredAtNow,
          media(me, { createdAt: at(0), retentionUntil: at(21) }), // not yet
          media(me, { createdAt: at(0), pinned: true, retentionUntil: at(5) }), // pinned wins
          media(me, { createdAt: at(0), pinned: true, retentionUntil: null }),
          media(me, { createdAt: at(0), retentionUntil: null }),
          pending(me, { createdAt: at(0), uploadExpiresAt: at(25) }), // deadline ahead
          pending(me, { createdAt: at(0), uploadExpiresAt: null, retentionUntil: at(1) }), // pending: retention is not its clock
        ];
        for (const m of rows) await insertNew(m);

        // Retention ended at 10, the upload deadline at 11, retention at 20 (creation order differs).
        expect(await repo.findExpired(at(20), 100)).toEqual([expiredReady, expiredPending, expiredAtNow]);
        expect(await repo.findExpired(at(20), 2)).toEqual([expiredReady, expiredPending]);
        expect(await repo.findExpired(at(9), 100)).toEqual([]);
      });

      it('puts rows claimed earlier (a deletion that failed) after every other expired row, so new expiries are taken first', async () => {
        const me = owner();
        // Claimed by an earlier sweep whose deletion failed (storage refused): closed at 12 and 13.
        const stuck = [await insertNew(media(me, { retentionUntil: at(10) })), await insertNew(media(me, { retentionUntil: at(11) }))];
        const claimed = [await repo.claimForDeletion(stuck[0].id, at(13), { onlyIfExpired: true }), await repo.claimForDeletion(stuck[1].id, at(12), { onlyIfExpired: true })];
        // A discard whose cleanup failed: closed at 14.
        const discarded = await insertNew(pending(me, { uploadExpiresAt: at(50) }));
        await repo.closeUpload(discarded.id, at(14));
        const closed = { ...discarded, uploadExpiresAt: at(14), updatedAt: at(14), claimedAt: at(14) };
        // Expired since: an object past retention and an abandoned upload.
        const expiredReady = await insertNew(media(me, { retentionUntil: at(15) }));
        const abandoned = await insertNew(pending(me, { uploadExpiresAt: at(16) }));

        expect(await repo.findExpired(at(20), 100)).toEqual([expiredReady, abandoned, claimed[1], claimed[0], closed]);
        expect(await repo.findExpired(at(20), 2)).toEqual([expiredReady, abandoned]);
        expect(await repo.findExpired(at(20), 3)).toEqual([expiredReady, abandoned, claimed[1]]);
      });
    });

    describe('usage', () => {
      it('counts ready and pending rows and their bytes, for that owner only', async () => {
        const me = owner();
        await insertNew(media(me, { bytes: 100 }));
        await insertNew(media(me, { bytes: 5_000_000_000 }));
        await insertNew(pending(me, { bytes: 7 }));
        await insertNew(media(owner(), { bytes: 999 }));
        expect(await repo.usage(me)).toEqual({ objects: 3, bytes: 5_000_000_107 });
        expect(await repo.usage(owner())).toEqual({ objects: 0, bytes: 0 });
      });
    });

    describe('quotas', () => {
      const quotaCode = async (promise: Promise<unknown>) => {
        try {
          await promise;
          return 'ok';
        } catch (error) {
          return (error as { code?: string }).code ?? String(error);
        }
      };

      it('refuses an insert past either limit, and gives usage back on delete', async () => {
        const me = owner();
        const limits = { maxObjects: 2, maxBytes: 250 };
        const first = await repo.insert(media(me, { bytes: 100 }), limits);
        expect(first.inserted).toBe(true);
        expect(await quotaCode(repo.insert(media(me, { bytes: 151 }), limits))).toBe('quota_exceeded');
        await repo.insert(media(me, { bytes: 150 }), limits);
        expect(await quotaCode(repo.insert(media(me, { bytes: 1 }), limits))).toBe('quota_exceeded');
        expect(await repo.usage(me)).toEqual({ objects: 2, bytes: 250 });
        await repo.delete(insertedMedia(first).id);
        expect(await repo.usage(me)).toEqual({ objects: 1, bytes: 150 });
        expect(await quotaCode(repo.insert(media(me, { bytes: 100 }), limits))).toBe('ok');
      });

      it('costs nothing for a twin, even at the limit', async () => {
        const me = owner();
        const limits = { maxObjects: 1, maxBytes: 0 };
        const original = await insertNew(media(me));
        const twin = await repo.insert(media(me, { sha256: original.sha256 }), limits);
        expect(twin.inserted).toBe(false);
        expect(await repo.usage(me)).toEqual({ objects: 1, bytes: original.bytes });
      });

      it('checks the growth of a pending row when it becomes ready', async () => {
        const me = owner();
        const limits = { maxObjects: 0, maxBytes: 1000 };
        const reserved = await insertNew(pending(me, { bytes: 0 }));
        expect(await quotaCode(repo.markReady(reserved, { bytes: 1001, sha256: sha(), mimeType: 'image/png', retentionUntil: at(30) }, at(1), limits))).toBe(
          'quota_exceeded',
        );
        expect((await repo.findById(reserved.id))!.status).toBe('pending');
        expect(await repo.usage(me)).toEqual({ objects: 1, bytes: 0 });
        await repo.markReady(reserved, { bytes: 1000, sha256: sha(), mimeType: 'image/png', retentionUntil: at(30) }, at(1), limits);
        expect(await repo.usage(me)).toEqual({ objects: 1, bytes: 1000 });
      });

      it('never overshoots with 25 concurrent inserts of one owner', async () => {
        const me = owner();
        const limits = { maxObjects: 7, maxBytes: 0 };
        const results = await Promise.all(Array.from({ length: 25 }, () => quotaCode(repo.insert(media(me, { bytes: 10 }), limits))));
        expect(results.filter((r) => r === 'ok')).toHaveLength(7);
        expect(results.filter((r) => r === 'quota_exceeded')).toHaveLength(18);
        expect(await repo.usage(me)).toEqual({ objects: 7, bytes: 70 });
      });
    });

    describe('list', () => {
      it('pages by id for one owner, and filters by ids and expiry', async () => {
        const me = owner();
        const rows = [];
        for (let i = 0; i < 5; i++) rows.push(await insertNew(media(me, { retentionUntil: at(i + 1) })));
        const other = await insertNew(media(owner()));
        const sorted = rows.map((m) => m.id).sort();
        const first = await repo.list({ ownerId: me, limit: 3 });
        expect(first.map((m) => m.id)).toEqual(sorted.slice(0, 3));
        const rest = await repo.list({ ownerId: me, afterId: first[2].id, limit: 3 });
        expect(rest.map((m) => m.id)).toEqual(sorted.slice(3));
        expect((await repo.list({ ids: [other.id, rows[0].id], limit: 10 })).map((m) => m.id).sort()).toEqual([other.id, rows[0].id].sort());
        expect(await repo.list({ ids: [other.id], ownerId: me, limit: 10 })).toEqual([]);
        const expired = await repo.list({ ownerId: me, expiredAt: at(2), limit: 10 });
        expect(expired.map((m) => m.id).sort()).toEqual([rows[0].id, rows[1].id].sort());
        expect(await repo.list({ ownerId: me, limit: 0 })).toEqual([]);
      });
    });

    it('answers ping', async () => {
      await expect(repo.ping()).resolves.toBeUndefined();
    });
  });
}
