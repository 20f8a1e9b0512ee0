import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DirectUpload, FixedQuotaPolicy, INGEST_DEADLINE_SECONDS, IngestMedia, ManageMedia, MediaAccess, PresignCache, SystemClock, uploadKeyFor, type MediaObject, type MediaPolicy, type Principal } from '@jan/domain';
import { FixedClock, RecordingMediaEvents } from '@jan/domain/testing';
import { newMediaId } from '@jan/mediaid';
import { openDatabase, TypeOrmMediaRepository, type Database } from '@jan/persistence';
import { LocalDiskMediaStorage } from '@jan/storage-local';
import { SharpImageInspector } from '../../src/infrastructure/images/sharp-image-inspector';
import { TempFileUploadStaging } from '../../src/infrastructure/staging/temp-file-upload-staging';
import { pngImage, uniqueUser } from '../support/images';
import { createScratchDatabase, postgresDsn } from '../support/test-app';

const policy: MediaPolicy = { maxBytes: 1 << 20, retentionDays: 30, presignTtlSeconds: 600, inline: { enabled: false, maxImageBytes: 1, maxRequestBytes: 1 } };
const signingKeys = [{ id: 'k1', secret: 'fault-injection-secret-0123456789abcdef' }];

/** The real repository, remembering the row an ingest asked it to insert. */
class RecordsInsert extends TypeOrmMediaRepository {
  attempted: MediaObject | undefined;

  override async insert(...args: Parameters<TypeOrmMediaRepository['insert']>) {
    this.attempted = args[0];
    return super.insert(...args);
  }
}

/**
 * Fault injection on the real adapters (PostgreSQL, local disk, temp-file staging, sharp): a
 * failed put leaves no row; a failed insert writes no object; a database that fails after the
 * bytes were written (making the pending row ready) leaves no object.
 */
describe('ingest under faults (real adapters)', () => {
  let dir: string;
  let db: Database;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'jan-media-faults-'));
    db = await openDatabase({ writeDsn: postgresDsn(), dataDir: dir });
  });
  afterAll(async () => {
    await db?.close();
    await rm(dir, { recursive: true, force: true });
  });

  function ingestWith(repository: TypeOrmMediaRepository, storage: LocalDiskMediaStorage, quota = new FixedQuotaPolicy()) {
    // Everything spooled to files, so the checks below also prove that temp files are cleaned up.
    const staging = new TempFileUploadStaging(join(dir, 'tmp'), { inMemoryMaxBytes: 0 });
    return new IngestMedia(repository, storage, staging, new SharpImageInspector({ staging }), new SystemClock(), new RecordingMediaEvents(), policy, quota);
  }

  it('writes no row when storage fails', async () => {
    const root = join(dir, 'broken-storage');
    await mkdir(root, { recursive: true });
    await writeFile(join(root, 'images'), 'a file where the images directory should be');
    const storage = new LocalDiskMediaStorage({ root, publicUrl: 'http://127.0.0.1:1', signingKeys });
    const repository = new TypeOrmMediaRepository(db.writer);
    const owner = uniqueUser('faults');
    const principal: Principal = { kind: 'user', subject: owner };
    await expect(ingestWith(repository, storage).execute({ principal, source: 'data_url', body: Readable.from([await pngImage(1)]) })).rejects.toThrow();
    expect(await repository.usage(owner)).toEqual(expect.objectContaining({ objects: 0 }));
    expect(await readdir(join(dir, 'tmp'))).toEqual([]);
  });

  it('writes no object when the database fails on the pending insert', async () => {
    const root = join(dir, 'storage-insert');
    const storage = new LocalDiskMediaStorage({ root, publicUrl: 'http://127.0.0.1:1', signingKeys });
    const doomed = await openDatabase({ writeDsn: postgresDsn(), dataDir: dir });
    class DatabaseDiesOnInsert extends RecordsInsert {
      override async insert(...args: Parameters<TypeOrmMediaRepository['insert']>) {
        await doomed.writer.destroy();
        return super.insert(...args);
      }
    }
    const dying = new DatabaseDiesOnInsert(doomed.writer);
    const owner = uniqueUser('faults');
    const principal: Principal = { kind: 'user', subject: owner };
    try {
      await expect(
        ingestWith(dying, storage).execute({ principal, source: 'data_url', body: Readable.from([await pngImage(2)]) }),
      ).rejects.toThrow();
    } finally {
      await doomed.close().catch(() => undefined);
    }
    expect(dying.attempted).toMatchObject({ status: 'pending' });
    expect(await storage.head(dying.attempted!.storageKey)).toBeNull();
    expect(await new TypeOrmMediaRepository(db.writer).findById(dying.attempted!.id)).toBeNull();
  });

  it('removes the object it wrote and its pending row when the database fails on markReady', async () => {
    const root = join(dir, 'storage');
    const storage = new LocalDiskMediaStorage({ root, publicUrl: 'http://127.0.0.1:1', signingKeys });
    const repository = new TypeOrmMediaRepository(db.writer);
    class MarkReadyFails extends RecordsInsert {
      override async markReady(): Promise<never> {
        expect(await storage.head(this.attempted!.storageKey)).not.toBeNull();
        throw new Error('connection reset');
      }
    }
    const failing = new MarkReadyFails(db.writer);
    const owner = uniqueUser('faults');
    const principal: Principal = { kind: 'user', subject: owner };
    await expect(
      ingestWith(failing, storage).execute({ principal, source: 'data_url', body: Readable.from([await pngImage(3)]) }),
    ).rejects.toThrow('connection reset');
    expect(failing.attempted).toBeDefined();
    expect(await storage.head(failing.attempted!.storageKey)).toBeNull();
    expect(await readdir(join(root, 'images'))).toEqual([]);
    expect(await repository.findById(failing.attempted!.id)).toBeNull();
    expect(await repository.usage(owner)).toEqual(expect.objectContaining({ objects: 0, bytes: 0 }));
  });

  it('after a crash between the put and markReady, the sweep past the deadline removes the pending row and its object', async () => {
    const root = join(dir, 'storage-crash');
    const storage = new LocalDiskMediaStorage({ root, publicUrl: 'http://127.0.0.1:1', signingKeys });
    const repository = new TypeOrmMediaRepository(db.writer);
    class DiesBeforeMarkReady extends RecordsInsert {
      override markReady(): Promise<never> {
        return new Promise(() => undefined);
      }
    }
    const dying = new DiesBeforeMarkReady(db.writer);
    const owner = uniqueUser('faults');
    const principal: Principal = { kind: 'user', subject: owner };
    void ingestWith(dying, storage).execute({ principal, source: 'data_url', body: Readable.from([await pngImage(4)]) });
    for (let i = 0; i < 100 && !(dying.attempted && (await storage.head(dying.attempted.storageKey))); i++) await new Promise((r) => setTimeout(r, 20));
    expect(await repository.findById(dying.attempted!.id, { fresh: true })).toMatchObject({ status: 'pending' });
    expect(await storage.head(dying.attempted!.storageKey)).not.toBeNull();

    const later = new FixedClock(new Date(Date.now() + INGEST_DEADLINE_SECONDS * 1000 + 1000));
    const manage = new ManageMedia(new MediaAccess(repository, new RecordingMediaEvents(), later), repository, storage, new PresignCache(10), later, new RecordingMediaEvents(), policy);
    await manage.purgeExpired();
    expect(await repository.findById(dying.attempted!.id, { fresh: true })).toBeNull();
    expect(await readdir(join(root, 'images'))).toEqual([]);
  });

  it('an upload of bytes the same owner is storing at this moment dedupes at the quota limit, as a sequential one does', async () => {
    // The first upload's put waits until the second has written its own pending row.
    let releaseFirst!: () => void;
    const firstMayFinish = new Promise<void>((resolve) => (releaseFirst = resolve));
    let puts = 0;
    class GatedStorage extends LocalDiskMediaStorage {
      override async put(...args: Parameters<LocalDiskMediaStorage['put']>) {
        if (++puts === 1) await firstMayFinish;
        return super.put(...args);
      }
    }
    const storage = new GatedStorage({ root: join(dir, 'storage-twins-at-limit'), publicUrl: 'http://127.0.0.1:1', signingKeys });
    let inserts = 0;
    class CountsInserts extends TypeOrmMediaRepository {
      override async insert(...args: Parameters<TypeOrmMediaRepository['insert']>) {
        try {
          return await super.insert(...args);
        } finally {
          if (++inserts === 2) releaseFirst();
        }
      }
    }
    const repository = new CountsInserts(db.writer);
    const ingest = ingestWith(repository, storage, new FixedQuotaPolicy({ maxObjects: 1, maxBytes: 0 }));
    const owner = uniqueUser('faults');
    const principal: Principal = { kind: 'user', subject: owner };
    const png = await pngImage(5);
    const first = ingest.execute({ principal, source: 'data_url', body: Readable.from([png]) });
    // The second starts once the first has its pending row (and waits in its put).
    for (let i = 0; i < 200 && inserts === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const second = ingest.execute({ principal, source: 'data_url', body: Readable.from([png]) });
    // Refused before its insert, the second would otherwise keep the first waiting.
    void second.catch(() => undefined).finally(releaseFirst);
    const [a, b] = await Promise.allSettled([first, second]);
    expect(a).toMatchObject({ status: 'fulfilled' });
    expect(b).toMatchObject({ status: 'fulfilled' });
    // Either may make its row ready first; the other answers it as a twin.
    const answers = [a, b].map((settled) => (settled as PromiseFulfilledResult<{ media: MediaObject; deduped: boolean }>).value);
    expect(answers.map((answer) => answer.deduped).sort()).toEqual([false, true]);
    const stored = answers.find((answer) => !answer.deduped)!.media;
    expect(answers.map((answer) => answer.media.id)).toEqual([stored.id, stored.id]);
    expect(await repository.usage(owner)).toEqual({ objects: 1, bytes: stored.bytes });
  });

  it('a reservation that declared the same sha256 but not its size is no twin: the ingest stays refused at the limit', async () => {
    const storage = new LocalDiskMediaStorage({ root: join(dir, 'storage-reservation-twin'), publicUrl: 'http://127.0.0.1:1', signingKeys });
    const repository = new TypeOrmMediaRepository(db.writer);
    const limits = { maxObjects: 1, maxBytes: 0 };
    const owner = uniqueUser('faults');
    const principal: Principal = { kind: 'user', subject: owner };
    const png = await pngImage(6);
    const now = new Date();
    const id = newMediaId(now.getTime());
    // What prepare writes for a client that declared the sha256 and no size: it charged no bytes.
    await repository.insert(
      {
        id,
        ownerId: owner,
        storageProvider: storage.provider,
        storageKey: `images/${id}.png`,
        mimeType: 'image/png',
        bytes: 0,
        sha256: createHash('sha256').update(png).digest('hex'),
        originalSha256: null,
        status: 'pending',
        pinned: false,
        filename: null,
        createdAt: now,
        updatedAt: now,
        retentionUntil: null,
        uploadExpiresAt: new Date(now.getTime() + 3600_000),
      },
      limits,
    );
    await expect(
      ingestWith(repository, storage, new FixedQuotaPolicy(limits)).execute({ principal, source: 'data_url', body: Readable.from([png]) }),
    ).rejects.toMatchObject({ code: 'quota_exceeded' });
    expect(await repository.usage(owner)).toEqual({ objects: 1, bytes: 0 });
  });
  it('a complete whose markReady fails after a concurrent complete of the same id adopted its object leaves that object to the ready row', async () => {
    const storage = new LocalDiskMediaStorage({ root: join(dir, 'storage-complete-race'), publicUrl: 'http://127.0.0.1:1', signingKeys });
    const repository = new TypeOrmMediaRepository(db.writer);
    // Complete A runs on a database connection that dies (a real outage, as far as A can tell)
    // when its markReady is sent, which waits until complete B has finished.
    const doomed = await openDatabase({ writeDsn: postgresDsn(), dataDir: dir });
    let reachedMarkReady!: () => void;
    const inMarkReady = new Promise<void>((resolve) => (reachedMarkReady = resolve));
    let releaseMarkReady!: () => void;
    const markReadyMayFail = new Promise<void>((resolve) => (releaseMarkReady = resolve));
    class DiesOnMarkReady extends TypeOrmMediaRepository {
      override async markReady(...args: Parameters<TypeOrmMediaRepository['markReady']>) {
        reachedMarkReady();
        await markReadyMayFail;
        await doomed.writer.destroy();
        return super.markReady(...args);
      }
    }
    const completeWith = (repo: TypeOrmMediaRepository) => {
      const staging = new TempFileUploadStaging(join(dir, 'tmp'), { inMemoryMaxBytes: 0 });
      const clock = new SystemClock();
      const events = new RecordingMediaEvents();
      return new DirectUpload(new MediaAccess(repo, events, clock), repo, storage, staging, new SharpImageInspector({ staging }), clock, events, { ...policy, uploadTtlSeconds: 600 });
    };
    const owner = uniqueUser('faults');
    const principal: Principal = { kind: 'user', subject: owner };
    const png = await pngImage(7);
    try {
      const { media } = await completeWith(repository).prepare({ principal, mimeType: 'image/png', bytes: png.length });
      await storage.put(uploadKeyFor(media.storageKey), Readable.from([png]), { contentType: 'image/png', contentLength: png.length });

      const a = completeWith(new DiesOnMarkReady(doomed.writer)).complete(principal, media.id);
      void a.catch(() => undefined);
      await inMarkReady;
      // A wrote the object; B finds it at the key, holding the bytes B checked, and makes the row ready.
      expect(await storage.head(media.storageKey)).not.toBeNull();
      const b = await completeWith(repository).complete(principal, media.id);
      expect(b).toMatchObject({ deduped: false, media: { id: media.id, status: 'ready' } });
      releaseMarkReady();
      await expect(a).rejects.toThrow('Driver not Connected');

      // The ready row still has its object, with the bytes it was made ready with.
      expect(await repository.findById(media.id, { fresh: true })).toMatchObject({ status: 'ready', sha256: createHash('sha256').update(png).digest('hex') });
      const object = await storage.get(media.storageKey);
      const chunks: Buffer[] = [];
      for await (const chunk of object.body) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).equals(png)).toBe(true);
    } finally {
      releaseMarkReady();
      await doomed.close().catch(() => undefined);
    }
  });
  it('an upload whose twin a lagging read replica still shows, but the owner deleted on the primary, is stored anew', async () => {
    const storage = new LocalDiskMediaStorage({ root: join(dir, 'storage-replica-lag'), publicUrl: 'http://127.0.0.1:1', signingKeys });
    // A database of its own plays a replica that has not yet seen the deletion.
    const stale = await createScratchDatabase();
    await (await openDatabase({ writeDsn: stale.dsn, dataDir: dir })).close();
    const replicated = await openDatabase({ writeDsn: postgresDsn(), readDsn: stale.dsn, dataDir: dir });
    try {
      const repository = new TypeOrmMediaRepository(replicated.writer, replicated.reader);
      const ingest = ingestWith(repository, storage);
      const principal: Principal = { kind: 'user', subject: uniqueUser('faults') };
      const png = await pngImage(8);
      const first = await ingest.execute({ principal, source: 'data_url', body: Readable.from([png]) });
      expect(first.deduped).toBe(false);
      await new TypeOrmMediaRepository(replicated.reader).insert(first.media);
      // The owner's DELETE, on the primary: claim, object, row.
      expect(await repository.claimForDeletion(first.media.id, new Date())).not.toBeNull();
      await storage.delete(first.media.storageKey);
      expect(await repository.delete(first.media.id)).toBe(true);

      const again = await ingest.execute({ principal, source: 'data_url', body: Readable.from([png]) });
      expect(again.deduped).toBe(false);
      expect(again.media.id).not.toBe(first.media.id);
      expect(await repository.findById(again.media.id, { fresh: true })).toMatchObject({ status: 'ready' });
      expect(await storage.head(again.media.storageKey)).not.toBeNull();
    } finally {
      await replicated.close();
      await stale.drop();
    }
  });
});
