import { PresignCache } from './presign-cache';

const T0 = new Date('2026-11-28T12:00:00Z');
const minutes = (n: number) => new Date(T0.getTime() + n * 60_000);
const signed = (url: string, expiresAt = minutes(15)) => ({ url, expiresAt });

describe('PresignCache', () => {
  it('reuses an entry while more than half its lifetime remains, then signs again', () => {
    const cache = new PresignCache(10);
    cache.set('images/a.png', 'url|inline', signed('u1'), T0);
    expect(cache.get('images/a.png', 'url|inline', minutes(7))?.url).toBe('u1');
    expect(cache.get('images/a.png', 'url|inline', minutes(8))).toBeUndefined();
    expect([cache.hits, cache.misses, cache.size]).toEqual([1, 1, 0]);
  });

  it('drops the least recently used entry when full', () => {
    const cache = new PresignCache(2);
    cache.set('images/a.png', 'url|inline', signed('a'), T0);
    cache.set('images/b.png', 'url|inline', signed('b'), T0);
    cache.get('images/a.png', 'url|inline', T0);
    cache.set('images/c.png', 'url|inline', signed('c'), T0);
    expect(cache.get('images/b.png', 'url|inline', T0)).toBeUndefined();
    expect(cache.get('images/a.png', 'url|inline', T0)?.url).toBe('a');
    expect(cache.get('images/c.png', 'url|inline', T0)?.url).toBe('c');
  });

  it('invalidates every variant of one object and nothing else, also after evictions', () => {
    const cache = new PresignCache(4);
    cache.set('images/a.png', 'url|inline', signed('a1'), T0);
    cache.set('images/a.png', 'url|attachment; filename="x|y.png"', signed('a2'), T0);
    cache.set('images/ab.png', 'url|inline', signed('ab'), T0);
    cache.invalidate('images/a.png');
    expect(cache.get('images/a.png', 'url|inline', T0)).toBeUndefined();
    expect(cache.get('images/a.png', 'url|attachment; filename="x|y.png"', T0)).toBeUndefined();
    expect(cache.get('images/ab.png', 'url|inline', T0)?.url).toBe('ab');
    // Evicted entries leave no trace in the per-object index: a later set and invalidate still work.
    for (let i = 0; i < 10; i++) cache.set(`images/n${i}.png`, 'url|inline', signed(`n${i}`), T0);
    expect(cache.size).toBe(4);
    cache.set('images/a.png', 'url|inline', signed('a3'), T0);
    cache.invalidate('images/a.png');
    expect(cache.size).toBe(3);
    expect(cache.get('images/a.png', 'url|inline', T0)).toBeUndefined();
  });

  it('caches nothing with a size of 0', () => {
    const cache = new PresignCache(0);
    cache.set('images/a.png', 'url|inline', signed('a'), T0);
    expect(cache.size).toBe(0);
  });
});
