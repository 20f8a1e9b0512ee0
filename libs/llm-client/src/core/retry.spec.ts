import { abortableSleep, backoffDelay, DEFAULT_RETRY_POLICY, isRetryableStatus, parseRetryAfter, retryAfterDelay } from './retry';

describe('parseRetryAfter', () => {
  const now = Date.parse('2030-01-01T00:00:00Z');

  it('reads seconds, fractional seconds, retry-after-ms and HTTP dates', () => {
    expect(parseRetryAfter(new Headers({ 'retry-after': '3' }), now)).toBe(3000);
    expect(parseRetryAfter(new Headers({ 'retry-after': '0.5' }), now)).toBe(500);
    expect(parseRetryAfter(new Headers({ 'retry-after-ms': '250', 'retry-after': '9' }), now)).toBe(250);
    expect(parseRetryAfter(new Headers({ 'retry-after': 'Tue, 01 Jan 2030 00:00:10 GMT' }), now)).toBe(10_000);
  });

  it('clamps past dates to zero and ignores garbage', () => {
    expect(parseRetryAfter(new Headers({ 'retry-after': 'Mon, 31 Dec 2029 23:59:00 GMT' }), now)).toBe(0);
    expect(parseRetryAfter(new Headers({ 'retry-after': 'soon' }), now)).toBeUndefined();
    expect(parseRetryAfter(new Headers({ 'retry-after': '-1' }), now)).toBeUndefined();
    expect(parseRetryAfter(new Headers(), now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});

describe('retryAfterDelay', () => {
  it('waits at least what the server asked, and spreads clients over a quarter more', () => {
    expect(retryAfterDelay(2000, () => 0)).toBe(2000);
    expect(retryAfterDelay(2000, () => 0.5)).toBe(2250);
    expect(retryAfterDelay(2000, () => 0.999)).toBe(2500);
    expect(retryAfterDelay(0, () => 0.7)).toBe(0);
  });
});

describe('backoffDelay', () => {
  it('doubles from the initial delay, caps, and jitters down by at most 25%', () => {
    const policy = { ...DEFAULT_RETRY_POLICY, initialDelayMs: 100, maxDelayMs: 1000 };
    expect([0, 1, 2, 3, 4, 10].map((r) => backoffDelay(r, policy, () => 0))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(backoffDelay(1, policy, () => 1)).toBe(150);
    expect(backoffDelay(1, policy, () => 0.5)).toBe(175);
  });
});

describe('isRetryableStatus', () => {
  it('is true for 408, 429 and 5xx only', () => {
    expect([408, 429, 500, 502, 503, 504].every(isRetryableStatus)).toBe(true);
    expect([200, 400, 401, 403, 404, 409, 413, 422].some(isRetryableStatus)).toBe(false);
  });
});

describe('abortableSleep', () => {
  it('waits, and rejects early on abort', async () => {
    const started = Date.now();
    await abortableSleep(20);
    expect(Date.now() - started).toBeGreaterThanOrEqual(15);
    const controller = new AbortController();
    const pending = abortableSleep(60_000, controller.signal);
    controller.abort(new Error('stop'));
    await expect(pending).rejects.toThrow('stop');
  });
});
