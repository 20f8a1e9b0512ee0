import { Readable } from 'node:stream';
import type { Principal } from '../../access/principal';
import { codeOf, createUseCaseTestbed, pngBytes } from '../../testing';
import { DomainError } from '../errors';
import { INGEST_DEADLINE_SECONDS } from './ingest-media';

const alice: Principal = { kind: 'user', subject: 'alice' };

/** A step that never returns: the process died while it ran (kill -9, OOM kill, power loss). */
const crash = () => new Promise<never>(() => undefined);

/** Lets the ingest run up to the step that "crashes". */
const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

function setup() {
  return createUseCaseTestbed();
}

describe('IngestMedia after a crash', () => {
  it('writes the pending row before the object: a crash before the put leaves a pending row, which one sweep after its deadline removes', async () => {
    const t = setup();
    t.storage.put = crash;
    void t.upload(alice, pngBytes('crash-before-put'));
    await settle();

    const [row] = [...t.repository.rows.values()];
    expect(row).toMatchObject({ status: 'pending', ownerId: 'alice', uploadExpiresAt: new Date(t.clock.now().getTime() + INGEST_DEADLINE_SECONDS * 1000) });
    expect(t.repository.rows.size).toBe(1);
    expect(t.storage.objects.size).toBe(0);
    // Nobody sees it: no serve, no resolve, no dedupe.
    expect(await codeOf(t.open.readable(alice, row!.id))).toBe('media_not_found');
    expect(await t.repository.findReadyByOwnerAndSha256('alice', row!.sha256!)).toBeNull();

    // An in-flight ingest is not the sweep's before its deadline.
    t.clock.advance(INGEST_DEADLINE_SECONDS * 1000 - 1);
    expect((await t.manage.purgeExpired()).removed).toBe(0);
    expect(t.repository.rows.size).toBe(1);

    t.clock.advance(1);
    expect((await t.manage.purgeExpired()).removed).toBe(1);
    expect(t.repository.rows.size).toBe(0);
    expect(t.storage.objects.size).toBe(0);
  });

  it('a crash after the put leaves a pending row and its object; one sweep after the deadline removes both', async () => {
    const t = setup();
    t.repository.markReady = crash;
    void t.upload(alice, pngBytes('crash-after-put'));
    await settle();

    const [row] = [...t.repository.rows.values()];
    expect(row).toMatchObject({ status: 'pending', uploadExpiresAt: new Date(t.clock.now().getTime() + INGEST_DEADLINE_SECONDS * 1000) });
    expect([...t.storage.objects.keys()]).toEqual([row!.storageKey]);
    expect(await codeOf(t.open.readable(alice, row!.id))).toBe('media_not_found');
    // Counted against the quota, as a direct-upload reservation is.
    expect(await t.repository.usage('alice')).toEqual({ objects: 1, bytes: row!.bytes });

    t.clock.advance(INGEST_DEADLINE_SECONDS * 1000);
    expect((await t.manage.purgeExpired()).removed).toBe(1);
    expect(t.repository.rows.size).toBe(0);
    expect(t.storage.objects.size).toBe(0);
    expect(t.events.ofType('ingest.accepted')).toEqual([]);
  });

  it('makes the row ready after the put: one ready row and its object, answered with its id', async () => {
    const t = setup();
    const result = await t.upload(alice, pngBytes('whole'));
    expect(result).toEqual({ media: expect.objectContaining({ status: 'ready', uploadExpiresAt: null }), deduped: false });
    expect(result.media.retentionUntil).toEqual(new Date(t.clock.now().getTime() + 30 * 86_400_000));
    expect([...t.repository.rows.keys()]).toEqual([result.media.id]);
    expect([...t.storage.objects.keys()]).toEqual([result.media.storageKey]);
  });

  it('removes the object and the pending row when making it ready fails', async () => {
    const t = setup();
    t.repository.markReady = async () => {
      throw new DomainError('database_unavailable', 'connection reset');
    };
    expect(await codeOf(t.upload(alice, pngBytes('x')))).toBe('database_unavailable');
    expect(t.repository.rows.size).toBe(0);
    expect(t.storage.objects.size).toBe(0);
    expect(t.staging.live).toBe(0);
  });

  it('removes the pending row when the put fails', async () => {
    const t = setup();
    t.storage.failNextPut = new DomainError('storage_unavailable', 'bucket down');
    expect(await codeOf(t.upload(alice, pngBytes('x')))).toBe('storage_unavailable');
    expect(t.repository.rows.size).toBe(0);
    expect(t.storage.objects.size).toBe(0);
    expect(await t.repository.usage('alice')).toEqual({ objects: 0, bytes: 0 });
  });

  it('leaves the pending row for the sweep when its clean-up fails too', async () => {
    const t = setup();
    t.storage.failNextPut = new DomainError('storage_unavailable', 'bucket down');
    const claim = t.repository.claimForDeletion.bind(t.repository);
    t.repository.claimForDeletion = async () => {
      throw new DomainError('database_unavailable', 'connection reset');
    };
    expect(await codeOf(t.upload(alice, pngBytes('x')))).toBe('storage_unavailable');
    expect([...t.repository.rows.values()]).toEqual([expect.objectContaining({ status: 'pending' })]);

    t.repository.claimForDeletion = claim;
    t.clock.advance(INGEST_DEADLINE_SECONDS * 1000);
    await t.manage.purgeExpired();
    expect(t.repository.rows.size).toBe(0);
    expect(t.storage.objects.size).toBe(0);
  });

  it('dedupes against a twin made ready while it stored: its own object and row go, the twin is answered', async () => {
    const t = setup();
    const put = t.storage.put.bind(t.storage);
    let twinId: string | undefined;
    t.storage.put = async (key, body, options) => {
      const written = await put(key, body, options);
      // Another upload of the same bytes wins between this put and markReady.
      if (!twinId) {
        t.storage.put = put;
        twinId = (await t.upload(alice, pngBytes('same'))).media.id;
      }
      return written;
    };
    const result = await t.ingest.execute({ principal: alice, source: 'multipart', body: Readable.from([pngBytes('same')]) });
    expect(result.deduped).toBe(true);
    expect(result.media.id).toBe(twinId);
    expect([...t.repository.rows.keys()]).toEqual([twinId]);
    expect([...t.storage.objects.keys()]).toEqual([result.media.storageKey]);
    expect(t.events.ofType('ingest.accepted').map((e) => e.deduped)).toEqual([false, true]);
  });
});
