import { DomainError } from '@jan/domain';

/**
 * Errors that mean "the database did not answer", not "the statement was wrong": the connection
 * was refused, reset or timed out, the pool could not get one, or the server is shutting down,
 * starting up or out of connections (SQLSTATE classes 08 and 57P, and 53300).
 */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const SERVER_CODES = new Set(['57P01', '57P02', '57P03', '53300']);
const POOL_MESSAGES = /connection terminated|timeout exceeded when trying to connect|connection error|cannot use a pool after calling end/i;

export function isDatabaseUnavailable(error: unknown): boolean {
  // TypeORM wraps the driver's error in QueryFailedError.driverError.
  const driverError = (error as { driverError?: unknown } | null)?.driverError ?? error;
  const code = (driverError as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && (NETWORK_CODES.has(code) || SERVER_CODES.has(code) || code.startsWith('08'))) return true;
  const message = (driverError as { message?: unknown } | null)?.message;
  return typeof message === 'string' && POOL_MESSAGES.test(message);
}

/** `error`, or `database_unavailable` (503, retryable) when the database did not answer. */
export function translateDatabaseError(error: unknown): unknown {
  if (!isDatabaseUnavailable(error)) return error;
  return new DomainError('database_unavailable', 'the database is not answering; try again shortly', undefined, { cause: error });
}

/** Runs `work`, turning "the database did not answer" into `database_unavailable`. */
export async function answering<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    throw translateDatabaseError(error);
  }
}
