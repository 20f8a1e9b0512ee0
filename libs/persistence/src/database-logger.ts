import type { Logger } from 'typeorm';

export type QueryListener = (sql: string, parameters: readonly unknown[] | undefined) => void;

/** A request-path statement ended: its name, how long it took, and whether it succeeded. */
export type StatementListener = (name: string, seconds: number, ok: boolean) => void;

/** Postgres codes the repository expects and handles (unique violation), so not worth a log line. */
const HANDLED_ERROR_CODES = new Set(['23505']);

/**
 * TypeORM's logger, reduced to what an operator needs: migrations, slow and failed queries, by
 * SQL text only (parameters can hold owner ids and filenames). Listeners see every statement,
 * which is how tests count round trips and how metrics could.
 */
export class DatabaseLogger implements Logger {
  private readonly listeners = new Set<QueryListener>();

  constructor(private readonly sink?: (message: string) => void) {}

  private readonly statementListeners = new Set<StatementListener>();

  addListener(listener: QueryListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  addStatementListener(listener: StatementListener): () => void {
    this.statementListeners.add(listener);
    return () => this.statementListeners.delete(listener);
  }

  statementDone(name: string, seconds: number, ok: boolean): void {
    for (const listener of this.statementListeners) listener(name, seconds, ok);
  }

  logQuery(query: string, parameters?: unknown): void {
    for (const listener of this.listeners) listener(query, Array.isArray(parameters) ? parameters : undefined);
  }

  logQueryError(error: string | Error, query: string): void {
    const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
    if (typeof code === 'string' && HANDLED_ERROR_CODES.has(code)) return;
    this.sink?.(`query failed: ${error instanceof Error ? error.message : error} -- ${oneLine(query)}`);
  }

  logQuerySlow(time: number, query: string): void {
    this.sink?.(`slow query (${time} ms): ${oneLine(query)}`);
  }

  logSchemaBuild(): void {}

  logMigration(message: string): void {
    this.sink?.(`migration: ${message}`);
  }

  log(level: 'log' | 'info' | 'warn', message: unknown): void {
    if (level === 'warn') this.sink?.(`typeorm: ${String(message)}`);
  }
}

function oneLine(sql: string): string {
  return sql.replace(/\s+/g, ' ').trim().slice(0, 500);
}
