import { IdempotencyStore } from './idempotency-store';

const settle = () => new Promise((resolve) => setImmediate(resolve));
const ids = (n: number, seed: number) => Array.from({ length: n }, (_, i) => `jan_${String(seed).padStart(10, '0')}${String(i).padStart(16, '0')}`);

describe('IdempotencyStore', () => {
  it('keeps at most maxChars of answers: large purge answers under fresh keys do not add up', async () => {
    const store = new IdempotencyStore({ maxEntries: 10_000, maxChars: 2_000_000 });
    // 200 admin purges with fresh keys, each answering 5,000 ids (~160,000 characters of JSON).
    for (let call = 0; call < 200; call++) {
      const purged = ids(5_000, call);
      store.remember(`admin:ops||POST /v1/admin/media/purge|key-${call}`, { expiresAt: Number.MAX_SAFE_INTEGER, fingerprint: 'f', result: Promise.resolve({ purged, count: purged.length }) });
      await settle();
    }
    expect(store.heldChars).toBeLessThanOrEqual(2_000_000);
    expect(store.size).toBeGreaterThan(0);
    expect(store.size).toBeLessThan(200);
    // The newest answer is the one kept for a retry; the oldest went first.
    expect(store.find('admin:ops||POST /v1/admin/media/purge|key-199', 0)).toBeDefined();
    expect(store.find('admin:ops||POST /v1/admin/media/purge|key-0', 0)).toBeUndefined();
  });

  it('keeps at most maxEntries, oldest first, and drops expired and failed entries', async () => {
    const store = new IdempotencyStore({ maxEntries: 100, maxChars: Number.MAX_SAFE_INTEGER });
    for (let i = 0; i < 100_000; i++) store.remember(`user:u${i}||POST /v1/media|k`, { expiresAt: 1_000, fingerprint: 'f', result: Promise.resolve({ id: i }) });
    await settle();
    expect(store.size).toBe(100);
    expect(store.find('user:u99999||POST /v1/media|k', 999)).toBeDefined();
    expect(store.find('user:u99999||POST /v1/media|k', 1_000)).toBeUndefined();
    expect(store.size).toBe(99);

    store.remember('failing', { expiresAt: 1_000, fingerprint: 'f', result: Promise.reject(new Error('refused')) });
    await settle();
    expect(store.find('failing', 0)).toBeUndefined();
  });

  it('does not let a failure of a replaced entry forget the entry that replaced it', async () => {
    const store = new IdempotencyStore();
    let fail!: (error: Error) => void;
    store.remember('s', { expiresAt: 10, fingerprint: 'first', result: new Promise((_, reject) => (fail = reject)) });
    // Expired: a new request under the same scope takes its place before the first one fails.
    expect(store.find('s', 10)).toBeUndefined();
    store.remember('s', { expiresAt: 100, fingerprint: 'second', result: Promise.resolve({ ok: true }) });
    fail(new Error('late failure'));
    await settle();
    expect(store.find('s', 50)?.fingerprint).toBe('second');
    expect(store.heldChars).toBe('s'.length + JSON.stringify({ ok: true }).length);
  });
});
