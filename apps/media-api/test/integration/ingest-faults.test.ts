import { mkdtemp, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { IngestMedia, SystemClock, type MediaObject, type MediaPolicy, type Principal } from '@jan/domain';
import { RecordingMediaEvents } from '@jan/domain/testing';
import { openDatabase, TypeOrmMediaRepository, type Database } from '@jan/persistence';
import { LocalDiskMediaStorage } from '@jan/storage-local';
import { SharpImageInspector } from '../../src/infrastructure/images/sharp-image-inspector';
import { TempFileUploadStaging } from '../../src/infrastructure/staging/temp-file-upload-staging';
import { pngImage, uniqueUser } from '../support/images';
import { postgresDsn } from '../support/test-app';

const policy: MediaPolicy = { maxBytes: 1 << 20, retentionDays: 30, presignTtlSeconds: 600, inline: { enabled: false, maxImageBytes: 1, maxRequestBytes: 1 } };
const signingKeys = [{ id: 'k1', secret: 'fault-injection-secret-0123456789abcdef' }];

/**
 * Fault injection on the real adapters (PostgreSQL, local disk, temp-file staging, sharp): a
 * failed put leaves no row; a failed insert after the bytes were written leaves no object.
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

  function ingestWith(repository: TypeOrmMediaRepository, storage: LocalDiskMediaStorage) {
    // Everything spooled to files, so the checks below also prove that temp files are cleaned up.
    const staging = new TempFileUploadStaging(join(dir, 'tmp'), { inMemoryMaxBytes: 0 });
    return new IngestMedia(repository, storage, staging, new SharpImageInspector({ staging }), new SystemClock(), new RecordingMediaEvents(), policy);
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

  it('removes the object it wrote when the database fails on insert', async () => {
    const root = join(dir, 'storage');
    const storage = new LocalDiskMediaStorage({ root, publicUrl: 'http://127.0.0.1:1', signingKeys });
    const doomed = await openDatabase({ writeDsn: postgresDsn(), dataDir: dir });
    let attempted: MediaObject | undefined;
    class DatabaseDiesOnInsert extends TypeOrmMediaRepository {
      override async insert(media: MediaObject) {
        attempted = media;
        await doomed.writer.destroy();
        return super.insert(media);
      }
    }
    const owner = uniqueUser('faults');
    const principal: Principal = { kind: 'user', subject: owner };
    try {
      await expect(
        ingestWith(new DatabaseDiesOnInsert(doomed.writer), storage).execute({ principal, source: 'data_url', body: Readable.from([await pngImage(2)]) }),
      ).rejects.toThrow();
    } finally {
      await doomed.close().catch(() => undefined);
    }
    expect(attempted).toBeDefined();
    expect(await storage.head(attempted!.storageKey)).toBeNull();
    expect(await readdir(join(root, 'images'))).toEqual([]);
    expect(await new TypeOrmMediaRepository(db.writer).findById(attempted!.id)).toBeNull();
  });
});
