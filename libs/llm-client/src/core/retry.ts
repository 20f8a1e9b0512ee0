/** Backoff and `Retry-After` arithmetic, kept pure so the schedule can be tested without waiting. */

export interface RetryPolicy {
  /** First backoff before jitter. */
  initialDelayMs: number;
  /** Cap on any computed backoff. */
  maxDelayMs: number;
  /** A `Retry-After` longer than this is not waited out: the error is thrown instead. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  initialDelayMs: 500,
  maxDelayMs: 8_000,
  maxRetryAfterMs: 60_000,
};

/** Statuses worth another attempt: the server said "later" or failed on its side. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/**
 * Milliseconds the server asked us to wait, from `retry-after-ms`, `Retry-After: <seconds>` or
 * `Retry-After: <HTTP date>`; `undefined` when absent or unparseable.
 */
export function parseRetryAfter(headers: Headers | undefined, now: number = Date.now()): number | undefined {
  if (!headers) return undefined;
  const ms = headers.get('retry-after-ms');
  if (ms !== null && ms.trim() !== '') {
    const value = Number(ms);
    if (Number.isFinite(value) && value >= 0) return value;
  }
  const raw = headers.get('retry-after');
  if (raw === null || raw.trim() === '') return undefined;
  const trimmed = raw.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * 1000;
  // An HTTP date always names its month; without the check `Date.parse` reads "-1" as a year.
  if (!/[a-z]{3}/i.test(trimmed)) return undefined;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/**
 * Exponential backoff with jitter: `initial * 2^retry`, capped, then reduced by up to 25% at
 * random so that many clients failing together do not come back in lockstep.
 */
export function backoffDelay(retry: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** retry);
  return Math.round(base * (1 - 0.25 * random()));
}

/**
 * The wait for a server's `Retry-After`: never less than it asked, plus up to 25% at random, so
 * that the clients an outage failed together (the service sends one `Retry-After` to all of
 * them) do not all come back in the same instant.
 */
export function retryAfterDelay(retryAfterMs: number, random: () => number = Math.random): number {
  return Math.round(retryAfterMs * (1 + 0.25 * random()));
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
