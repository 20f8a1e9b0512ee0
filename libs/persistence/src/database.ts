import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { MediaObjectOrmEntity } from './entities/media-object.orm-entity';
import { acquireDirectoryLock } from './directory-lock';
import { CREATE_SCHEMA } from './migrations/1764000000000-media-objects.migration';
import { MIGRATIONS } from './migrations';
import { DatabaseLogger, type QueryListener, type StatementListener } from './database-logger';
import { startEmbeddedServer } from './embedded/embedded-server';
import { sendUnnamed } from './repositories/statements';

export interface OpenDatabaseOptions {
  /** PostgreSQL DSN of the primary. Absent: the embedded engine under `dataDir`. */
  writeDsn?: string;
  /** PostgreSQL DSN of a read replica; needs `writeDsn`. */
  readDsn?: string;
  /** Where the embedded engine keeps its files (`<dataDir>/pglite`). */
  dataDir: string;
  /** Connections per pool (writer and reader each). Default 10. */
  poolSize?: number;
  /** Migration progress, slow queries and query errors (SQL text only, never parameters). */
  logger?: (message: string) => void;
  /** Queries slower than this are reported to `logger`. Default 1000 ms. */
  slowQueryMs?: number;
  /**
   * Named prepared statements for the request paths (default true). Turn off behind a pooler in
   * transaction mode that does not track them. The embedded engine never uses them.
   */
  preparedStatements?: boolean;
}

/** The open database: where writes go, where reads may go, and how to shut it all down. */
export interface Database {
  writer: DataSource;
  /** A replica when `readDsn` was given, otherwise the writer itself. */
  reader: DataSource;
  engine: 'postgres' | 'embedded';
  /** Calls `listener` with every statement sent to the writer or reader; returns the unsubscribe. */
  onQuery(listener: QueryListener): () => void;
  /** Calls `listener` when a request-path statement ends (name, seconds, ok); returns the unsubscribe. */
  onStatement(listener: StatementListener): () => void;
  /** Closes pools, the embedded server and engine; idempotent. */
  close(): Promise<void>;
}

const DEFAULT_POOL_SIZE = 10;
const MIGRATIONS_TABLE = 'media_api.migrations';
/** Arbitrary constant shared by every process that migrates this schema ("janmedia" in ASCII). */
export const MIGRATION_LOCK_KEY = '7665961553394951521';

/**
 * Opens the database and brings its schema up to date. With `writeDsn` it is PostgreSQL
 * (migrations serialized across processes by an advisory lock); without, the embedded engine:
 * PGlite on disk, served in-process over the Postgres wire protocol so that the same `pg` driver,
 * SQL and isolation semantics apply to both.
 */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const poolSize = Math.max(2, options.poolSize ?? DEFAULT_POOL_SIZE);
  const logger = new DatabaseLogger(options.logger);
  if (options.readDsn && !options.writeDsn) {
    throw new Error('a read replica DSN needs a write DSN: the embedded engine has no replicas');
  }
  return options.writeDsn
    ? openPostgres(options.writeDsn, options.readDsn, poolSize, logger, options)
    : openEmbedded(options.dataDir, poolSize, logger, options);
}

async function openPostgres(
  writeDsn: string,
  readDsn: string | undefined,
  poolSize: number,
  logger: DatabaseLogger,
  options: OpenDatabaseOptions,
): Promise<Database> {
  const cleanup = new Cleanup();
  try {
    const writer = await initialize(dataSourceOptions(writeDsn, poolSize, logger, options, true), cleanup);
    await migrateWithLock(writer);
    const reader = readDsn ? await initialize(dataSourceOptions(readDsn, poolSize, logger, options, false), cleanup) : writer;
    if (options.preparedStatements === false) {
      sendUnnamed(writer);
      sendUnnamed(reader);
    }
    return database(writer, reader, 'postgres', logger, cleanup);
  } catch (error) {
    await cleanup.run();
    throw error;
  }
}

async function openEmbedded(dataDir: string, poolSize: number, logger: DatabaseLogger, options: OpenDatabaseOptions): Promise<Database> {
  const root = resolve(dataDir);
  await mkdir(root, { recursive: true });
  const cleanup = new Cleanup();
  try {
    // PGlite has no postmaster.pid: two processes on one directory would corrupt it silently.
    const release = await acquireDirectoryLock(join(root, 'pglite.lock'), options.logger);
    cleanup.add(release);
    // Pool connections beyond the server's limit would be refused; leave room for a spare.
    const server = await startEmbeddedServer({
      directory: join(root, 'pglite'),
      maxConnections: poolSize + 2,
      onUnexpectedExit: options.logger,
    });
    cleanup.add(() => server.stop());
    options.logger?.(`embedded database: opened ${join(root, 'pglite')} in ${Math.round(server.openMs)} ms`);
    const dsn = server.dsn;
    const writer = await initialize(dataSourceOptions(dsn, poolSize, logger, options, true), cleanup);
    // PGlite has one session, shared by every connection: a name prepared by one would clash on the next.
    sendUnnamed(writer);
    // One process owns the directory (the lock above), so no advisory lock is needed.
    await writer.query(CREATE_SCHEMA);
    await writer.runMigrations({ transaction: 'each' });
    return database(writer, writer, 'embedded', logger, cleanup);
  } catch (error) {
    await cleanup.run();
    throw error;
  }
}

function dataSourceOptions(
  url: string,
  poolSize: number,
  logger: DatabaseLogger,
  options: OpenDatabaseOptions,
  isWriter: boolean,
): DataSourceOptions {
  return {
    type: 'postgres',
    // Handed over rather than left to TypeORM's `require('pg')` by name: inside the app's bundle
    // that require resolves from the app's directory, where a production install has no pg.
    driver: pg,
    url,
    entities: [MediaObjectOrmEntity],
    migrations: isWriter ? MIGRATIONS : [],
    migrationsTableName: MIGRATIONS_TABLE,
    migrationsRun: false,
    synchronize: false,
    logger,
    maxQueryExecutionTime: options.slowQueryMs ?? 1000,
    poolSize,
    applicationName: isWriter ? 'jan-media-api' : 'jan-media-api-reader',
    connectTimeoutMS: 10_000,
    installExtensions: false,
  };
}

async function initialize(options: DataSourceOptions, cleanup: Cleanup): Promise<DataSource> {
  const source = new DataSource(options);
  await source.initialize();
  cleanup.add(() => (source.isInitialized ? source.destroy() : undefined));
  return source;
}

/**
 * Several replicas of the service may boot at once against one database. The session-level
 * advisory lock, held on its own connection, makes the others wait until the first has finished;
 * they then find nothing pending. The lock goes with the session if this process dies.
 */
async function migrateWithLock(writer: DataSource): Promise<void> {
  const lock = writer.createQueryRunner();
  await lock.connect();
  try {
    await lock.query('SELECT pg_advisory_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
    try {
      // The migrations table lives in the schema, so the schema has to exist before TypeORM looks.
      await lock.query(CREATE_SCHEMA);
      await writer.runMigrations({ transaction: 'each' });
    } finally {
      await lock.query('SELECT pg_advisory_unlock($1::bigint)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    await lock.release();
  }
}

function database(writer: DataSource, reader: DataSource, engine: Database['engine'], logger: DatabaseLogger, cleanup: Cleanup): Database {
  return {
    writer,
    reader,
    engine,
    onQuery: (listener) => logger.addListener(listener),
    onStatement: (listener) => logger.addStatementListener(listener),
    close: () => cleanup.run(),
  };
}

/** Undo steps, run newest first, once, even if some fail. */
class Cleanup {
  private readonly steps: Array<() => unknown> = [];
  private running: Promise<void> | null = null;

  add(step: () => unknown): void {
    this.steps.push(step);
  }

  run(): Promise<void> {
    this.running ??= (async () => {
      const errors: unknown[] = [];
      for (const step of this.steps.reverse()) {
        try {
          await step();
        } catch (error) {
          errors.push(error);
        }
      }
      if (errors.length) throw new AggregateError(errors, 'closing the database failed');
    })();
    return this.running;
  }
}
