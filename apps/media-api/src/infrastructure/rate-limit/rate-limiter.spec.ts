import type { Principal } from '@jan/domain';
import { bucketOf } from './rate-limit.guard';
import { InMemoryRateLimiter } from './rate-limiter';

describe('InMemoryRateLimiter', () => {
  it('allows `limit` hits per window and says when the window ends', async () => {
    let now = 1_000_000;
    const limiter = new InMemoryRateLimiter(() => now);
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await limiter.hit('k', 3, 60_000));
    expect(results.map((r) => [r.allowed, r.remaining])).toEqual([
      [true, 2],
      [true, 1],
      [true, 0],
      [false, 0],
    ]);
    now += 45_000;
    expect(await limiter.hit('k', 3, 60_000)).toMatchObject({ allowed: false, resetMs: 15_000 });
    expect((await limiter.hit('other', 3, 60_000)).allowed).toBe(true);
    now += 15_000;
    expect(await limiter.hit('k', 3, 60_000)).toMatchObject({ allowed: true, remaining: 2, resetMs: 60_000 });
    await limiter.close();
  });
  it('keeps at most maxKeys windows however many distinct keys arrive within one window', async () => {
    let now = 1_000_000;
    const limiter = new InMemoryRateLimiter(() => now, 1_000);
    // 100k distinct users (a service naming made-up X-Jan-User-Id values) inside one window.
    for (let i = 0; i < 100_000; i++) {
      expect((await limiter.hit(`user:u${i}`, 5, 60_000)).allowed).toBe(true);
      if (i % 10_000 === 0) now += 1;
    }
    expect(limiter.size).toBeLessThanOrEqual(1_000);
    // The newest keys keep their windows: a key hit just now is still counted.
    const latest = 'user:u99999';
    for (let i = 0; i < 4; i++) await limiter.hit(latest, 5, 60_000);
    expect((await limiter.hit(latest, 5, 60_000)).allowed).toBe(false);
    await limiter.close();
  });

  it('evicts the window that ends first, and only when full', async () => {
    let now = 0;
    const limiter = new InMemoryRateLimiter(() => now, 2);
    await limiter.hit('a', 1, 60_000);
    now += 1_000;
    await limiter.hit('b', 1, 60_000);
    // 'a' renews after its window ended (b's is still open): a is now the newest window.
    now = 60_500;
    await limiter.hit('a', 1, 60_000);
    await limiter.hit('c', 1, 60_000);
    expect(limiter.size).toBe(2);
    expect((await limiter.hit('a', 1, 60_000)).allowed).toBe(false);
    expect((await limiter.hit('c', 1, 60_000)).allowed).toBe(false);
    expect((await limiter.hit('b', 1, 60_000)).allowed).toBe(true);
    await limiter.close();
  });
});

describe('bucketOf', () => {
  const settings = { perUser: 10, perService: 100, windowSeconds: 60 };
  it('counts users by subject however they arrive, services alone, and never admins', () => {
    const cases: [Principal, unknown][] = [
      [{ kind: 'user', subject: 'alice' }, { key: 'user:alice', limit: 10 }],
      [{ kind: 'service', serviceId: 'llm-api', actingFor: 'alice' }, { key: 'user:alice', limit: 10 }],
      [{ kind: 'service', serviceId: 'llm-api', actingFor: null }, { key: 'service:llm-api', limit: 100 }],
      [{ kind: 'admin', adminId: 'ops', actingFor: 'alice' }, null],
    ];
    for (const [principal, bucket] of cases) expect(bucketOf(principal, settings)).toEqual(bucket);
    expect(bucketOf({ kind: 'service', serviceId: 'x', actingFor: null }, { ...settings, perService: 0 })).toBeNull();
    expect(bucketOf({ kind: 'user', subject: 'a' }, { ...settings, perUser: 0 })).toBeNull();
  });

  it("counts a service naming a user only in the body's user_id as that user", () => {
    const llm: Principal = { kind: 'service', serviceId: 'llm-api', actingFor: null };
    expect(bucketOf(llm, settings, 'alice')).toEqual({ key: 'user:alice', limit: 10 });
    expect(bucketOf(llm, settings, ' alice ')).toEqual({ key: 'user:alice', limit: 10 });
    // Refused later (malformed, blank, or disagreeing with the header): the header or the service is counted.
    expect(bucketOf(llm, settings, 'bad id')).toEqual({ key: 'service:llm-api', limit: 100 });
    expect(bucketOf(llm, settings, '')).toEqual({ key: 'service:llm-api', limit: 100 });
    expect(bucketOf({ ...llm, actingFor: 'bob' }, settings, 'alice')).toEqual({ key: 'user:bob', limit: 10 });
    // A user's own subject decides, whatever the body says.
    expect(bucketOf({ kind: 'user', subject: 'bob' }, settings, 'alice')).toEqual({ key: 'user:bob', limit: 10 });
  });
});
