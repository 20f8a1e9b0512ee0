import type { Pool, QueryResultRow } from 'pg';
import { QueryFailedError, type DataSource } from 'typeorm';
import { DatabaseLogger } from '../database-logger';
import { translateDatabaseError } from '../database-unavailable';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';

/**
 * A statement the request paths send over and over. It goes to the server once per connection as
 * a named prepared statement; after that each call only binds and executes it, so PostgreSQL no
 * longer parses and plans the same text thousands of times a second (docs/performance.md).
 */
export interface Statement {
  readonly name: string;
  readonly text: string;
}

export function statement(name: string, text: string): Statement {
  return { name, text };
}

/**
 * Data sources whose statements go unnamed, parsed and planned on every call: where a connection
 * is not its own server session. The embedded engine's connections share PGlite's one session, so
 * a name prepared by one clashes on the next; behind a pooler in transaction mode the session
 * that prepared a name may not be the one that executes it.
 */
const unnamed = new WeakSet<DataSource>();

export function sendUnnamed(source: DataSource): void {
  unnamed.add(source);
}

/**
 * Runs `statement` on the data source's `pg` pool, bypassing TypeORM's per-call query runner, and
 * returns its rows. It reports to the data source's logger as TypeORM does (every statement, slow
 * ones and failures), and fails with TypeORM's `QueryFailedError` carrying the driver's error, or
 * `database_unavailable` when the database did not answer.
 */
export async function runStatement<Row extends QueryResultRow>(source: DataSource, statement: Statement, values: unknown[]): Promise<Row[]> {
  const pool = (source.driver as PostgresDriver).master as Pool;
  const logger = source.logger;
  const timings = logger instanceof DatabaseLogger ? logger : null;
  logger.logQuery(statement.text, values);
  const started = performance.now();
  try {
    const config = unnamed.has(source) ? { text: statement.text, values } : { name: statement.name, text: statement.text, values };
    const result = await pool.query<Row>(config);
    const elapsed = performance.now() - started;
    timings?.statementDone(statement.name, elapsed / 1000, true);
    const slowMs = source.options.maxQueryExecutionTime;
    if (slowMs && elapsed > slowMs) logger.logQuerySlow(Math.round(elapsed), statement.text, values);
    return result.rows;
  } catch (error) {
    timings?.statementDone(statement.name, (performance.now() - started) / 1000, false);
    logger.logQueryError(error as Error, statement.text, values);
    throw translateDatabaseError(new QueryFailedError(statement.text, values, error as Error));
  }
}
