import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pendingMedia, readyMedia } from '@jan/domain/testing';
import { newMediaId, type MediaId } from '@jan/mediaid';
import { Client } from 'pg';
import { MIGRATIONS, openDatabase, startEmbeddedServer, TypeOrmAuditLog, TypeOrmMediaRepository, type Database } from '../../src';
import { mediaRepositoryContract, type MediaRepositorySubject } from './media-repository.contract';
import { typeOrmSubject } from './typeorm-subject';

// Creating a fresh embedded database costs seconds of CPU (initdb in WebAssembly); this file
// makes one and shares it between all its tests.
jest.setTimeout(120_000);

const LEGACY_ID = 'jan_01hqr8v9k2x3f4g5h6j7k8m9n0' as MediaId;
let dataDir: string;
let db: Database;
let subject: MediaRepositorySubject & { stop(): void };
const timings: Record<string, number> = {};

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'jan-persistence-'));
  // The earlier service's table, written before this service ever opens the directory.
  const started = performance.now();
  const server = await startEmbeddedServer({ directory: join(dataDir, 'pglite'), maxConnections: 2 });
  timings.freshCreateMs = server.openMs;
  timings.freshCreateWithThreadMs = performance.now() - started;
  const raw = new Client({ connectionString: server.dsn });
  await raw.connect();
  await raw.query(`
    CREATE SCHEMA media_api;
    CREATE TABLE media_api.media_objects (
      id varchar(40) PRIMARY KEY, storage_provider varchar(16) NOT NULL, storage_key text NOT NULL,
      mime_type text NOT NULL, bytes bigint NOT NULL, sha256 char(64) NOT NULL, created_by text,
      retention_until timestamptz NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL);
    CREATE UNIQUE INDEX media_objects_sha256_key ON media_api.media_objects (sha256);
    INSERT INTO media_api.media_objects VALUES ('${LEGACY_ID}', 's3', 'images/x.png', 'image/png', 42, '${'d'.repeat(64)}',
      'u1', '2031-01-01T00:00:00Z', '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z');`);
  await raw.end();
  await server.stop();

  const opening = performance.now();
  db = await openDatabase({ dataDir, poolSize: 10 });
  timings.firstOpenWithMigrationsMs = performance.now() - opening;
  subject = typeOrmSubject(db);
});

afterAll(async () => {
  subject?.stop();
  await db?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
  process.stdout.write(`embedded engine timings: ${JSON.stringify(roundAll(timings))}\n`);
});

mediaRepositoryContract('embedded engine', async () => subject);

describe('embedded database', () => {
  it('is the embedded engine, served on loopback, with the writer as reader', async () => {
    expect(db.engine).toBe('embedded');
    expect(db.reader).toBe(db.writer);
    const [{ version }] = await db.writer.query('SELECT version()');
    expect(version).toMatch(/PGlite/);
    const options = db.writer.options as { url?: string };
    expect(new URL(options.url!).hostname).toBe('127.0.0.1');
  });

  it('upgraded the earlier table it found', async () => {
    const repo = new TypeOrmMediaRepository(db.writer);
    expect(await repo.findById(LEGACY_ID)).toMatchObject({ ownerId: 'u1', status: 'ready', bytes: 42, pinned: false });
    const unique: Array<{ indexname: string }> = await db.writer.query(
      `SELECT indexname FROM pg_indexes WHERE schemaname = 'media_api' AND indexname = 'media_objects_sha256_key'`,
    );
    expect(unique).toEqual([]);
  });

  it('keeps a transaction to itself until it ends', async () => {
    const owner = `contract-${newMediaId()}`;
    const repo = new TypeOrmMediaRepository(db.writer);
    const runner = db.writer.createQueryRunner();
    await runner.connect();
    try {
      await runner.startTransaction();
      await runner.query(
        `INSERT INTO media_api.media_objects (id, storage_provider, storage_key, mime_type, created_by) VALUES ($1, 'local', 'k', 'image/png', $2)`,
        [newMediaId(), owner],
      );
      // Another connection's statement waits for the transaction (one session underneath),
      // and then sees the outcome, never the uncommitted row.
      const meanwhile = repo.usage(owner);
      await new Promise((resolve) => setTimeout(resolve, 50));
      await runner.rollbackTransaction();
      expect(await meanwhile).toEqual({ objects: 0, bytes: 0 });
    } finally {
      if (runner.isTransactionActive) await runner.rollbackTransaction();
      await runner.release();
    }
    expect(await repo.usage(owner)).toEqual({ objects: 0, bytes: 0 });
  });

  it("keeps each connection's query whole while other connections run transactions", async () => {
    // Quota-checked inserts run in transactions; lookups and usage reads on other connections,
    // sent at the same moment, once had their Bind land behind a BEGIN and fail or hang.
    const repo = new TypeOrmMediaRepository(db.writer);
    const limits = { maxObjects: 3, maxBytes: 0 };
    for (let round = 0; round < 5; round++) {
      const owner = `contract-${newMediaId()}`;
      const work: Array<Promise<unknown>> = [];
      for (let i = 0; i < 8; i++) {
        work.push(
          repo.insert(readyMedia(owner, { sha256: sha256Of(`${round}-${i}`) }), limits).then(
            () => 'ok',
            (error: { code?: string }) => error.code ?? String(error),
          ),
        );
        work.push(repo.findReadyByOwnerAndSha256(owner, sha256Of(`absent-${i}`)), repo.usage(owner), repo.findById(newMediaId()));
      }
      const settled = await within(10_000, Promise.all(work));
      const inserts = settled.filter((_, i) => i % 4 === 0);
      expect(inserts.filter((r) => r === 'ok')).toHaveLength(3);
      expect(inserts.filter((r) => r === 'quota_exceeded')).toHaveLength(5);
      expect(await repo.usage(owner)).toEqual({ objects: 3, bytes: 30 });
    }
  });

  it('writes 101 inserts, then 101 markReady calls, of one turn in two statements each, beside transactions on other connections', async () => {
    const repo = new TypeOrmMediaRepository(db.writer);
    const owner = `contract-${newMediaId()}`;
    const now = new Date();
    const rows = Array.from({ length: 101 }, () => pendingMedia(owner, now));
    const statements: string[] = [];
    const stop = db.onStatement((name) => statements.push(name));
    try {
      const limits = { maxObjects: 1000, maxBytes: 0 };
      const limited = Array.from({ length: 4 }, (_, i) => repo.insert(readyMedia(`${owner}-q`, { sha256: sha256Of(`limited-${i}`) }), limits));
      const inserted = await within(20_000, Promise.all([...rows.map((row) => repo.insert(row)), ...limited]));
      expect(inserted.every((result) => result.inserted)).toBe(true);
      // Rows 0 and 1 are twins: one becomes ready, the other is told of it.
      const facts = (i: number) => ({ bytes: 5, sha256: sha256Of(`ready-${i === 1 ? 0 : i}`), mimeType: 'image/png' as const, retentionUntil: null });
      const marked = await within(20_000, Promise.all(rows.map((row, i) => repo.markReady(row, facts(i), now))));
      expect(marked.filter((result) => result.inserted)).toHaveLength(100);
      expect(marked[1]).toMatchObject({ inserted: false, existing: { id: rows[0].id } });
    } finally {
      stop();
    }
    expect(statements.filter((name) => name === 'media_insert_many')).toHaveLength(1);
    expect(statements.filter((name) => name === 'media_insert')).toHaveLength(1);
    // 100 ready rows of 5 bytes, and the twin's row still pending.
    expect(await repo.usage(owner)).toEqual({ objects: 101, bytes: 500 });
  });

  it('keeps an audit trail that refuses updates and prunes by age', async () => {
    const audit = new TypeOrmAuditLog(db.writer);
    const mediaId = newMediaId();
    const entry = await audit.append({ actorKind: 'admin', actorId: 'ops', action: 'media.pin', mediaId, outcome: 'success', details: { pinned: true } });
    expect(await audit.recent(mediaId, 5)).toEqual([entry]);
    await expect(db.writer.query(`UPDATE media_api.media_audit_events SET action = 'x' WHERE id = $1`, [entry.id])).rejects.toThrow(/append-only/);
    // Its retention is the one way out.
    await audit.append({ occurredAt: new Date('1980-01-01T00:00:00Z'), actorKind: 'system', actorId: 'old', action: 'media.expire', mediaId, outcome: 'success' });
    expect(await audit.prune(new Date('1990-01-01T00:00:00Z'), 10)).toBe(1);
    expect(await audit.recent(mediaId, 5)).toEqual([entry]);
  });

  it('refuses a second opening of the same directory', async () => {
    await expect(openDatabase({ dataDir })).rejects.toThrow(/already open/);
  });

  it('refuses a read replica without a writer', async () => {
    await expect(openDatabase({ dataDir, readDsn: 'postgres://127.0.0.1:1/x' })).rejects.toThrow(/needs a write DSN/);
  });
});

describe('embedded database across restarts', () => {
  it('keeps its rows through close and reopen', async () => {
    const repo = new TypeOrmMediaRepository(db.writer);
    const now = new Date('2030-05-05T05:05:05.123Z');
    const id = newMediaId();
    const media = {
      id, ownerId: 'restart-owner', storageProvider: 'local' as const, storageKey: `images/${id}.png`,
      mimeType: 'image/png' as const, bytes: 77, sha256: 'e'.repeat(64), originalSha256: null, status: 'ready' as const,
      pinned: true, filename: 'kept.png', createdAt: now, updatedAt: now, retentionUntil: null, uploadExpiresAt: null,
    };
    await repo.insert(media);
    subject.stop();
    await db.close();
    await db.close(); // idempotent
    await expect(readFile(join(dataDir, 'pglite.lock'))).rejects.toThrow(/ENOENT/);

    const reopening = performance.now();
    db = await openDatabase({ dataDir, poolSize: 4 });
    timings.reopenMs = performance.now() - reopening;
    timings.rssMb = process.memoryUsage().rss / 1e6;
    subject = typeOrmSubject(db);

    const reopened = new TypeOrmMediaRepository(db.writer);
    expect(await reopened.findById(id)).toEqual(media);
    expect(await reopened.findById(LEGACY_ID)).not.toBeNull();
    const applied: Array<{ name: string }> = await db.writer.query('SELECT name FROM media_api.migrations');
    expect(applied).toHaveLength(MIGRATIONS.length);
    await reopened.delete(id);
  });

  it('takes over the lock file of a process that is gone', async () => {
    await db.close();
    // A pid that cannot be alive (above the kernel's pid_max), as a crashed process would leave.
    await writeFile(join(dataDir, 'pglite.lock'), '99999999\n');
    db = await openDatabase({ dataDir, poolSize: 2 });
    await expect(new TypeOrmMediaRepository(db.writer).ping()).resolves.toBeUndefined();
  });

  it('refuses a directory whose lock file names a live process', async () => {
    await db.close();
    // pid 1 is always alive, and never this test process.
    await writeFile(join(dataDir, 'pglite.lock'), '1\n');
    await expect(openDatabase({ dataDir, poolSize: 2 })).rejects.toThrow(/in use by process 1/);
    await rm(join(dataDir, 'pglite.lock'));
    db = await openDatabase({ dataDir, poolSize: 2 });
    await expect(new TypeOrmMediaRepository(db.writer).ping()).resolves.toBeUndefined();
  });
});

function sha256Of(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** `promise`, or a rejection naming the hang after `ms`. */
function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]);
}

function roundAll(values: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Math.round(v)]));
}
