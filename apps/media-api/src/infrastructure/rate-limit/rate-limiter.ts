import { Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';

export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Milliseconds until the current window ends. */
  resetMs: number;
}

/**
 * Fixed windows per key: the first hit opens a window of `windowMs`, at most `limit` hits fit in
 * it. Simple and cheap to share; a burst at a window's edge can reach twice the limit, which is
 * acceptable for abuse protection (it is not a billing meter).
 */
export abstract class RateLimiter {
  abstract hit(key: string, limit: number, windowMs: number): Promise<RateDecision>;
  abstract close(): Promise<void>;

  /** Nest calls this on shutdown. */
  async onModuleDestroy(): Promise<void> {
    await this.close();
  }
}

/** Windows the in-memory limiter keeps at most, by default. */
export const MAX_IN_MEMORY_WINDOWS = 100_000;

/**
 * One process's windows. Expired ones are dropped as they are met and on a timer. At most
 * `maxKeys` are kept: within one window, every distinct key (a made-up `X-Jan-User-Id` of a
 * service, a client address) would otherwise add one until the window ends, and a window can last
 * a day. When full, the window opened first goes (the one that ends first when every window is as
 * long): its key starts a new one, so a flood of keys can cost the oldest keys some of their count,
 * never the memory. The store keeps windows in the order they were opened.
 */
export class InMemoryRateLimiter extends RateLimiter {
  private readonly logger = new Logger('rate-limit');
  private readonly windows = new Map<string, { count: number; endsAt: number }>();
  private readonly sweeper: NodeJS.Timeout;
  private lastWarning = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly maxKeys = MAX_IN_MEMORY_WINDOWS,
  ) {
    super();
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
  }

  async hit(key: string, limit: number, windowMs: number): Promise<RateDecision> {
    const now = this.now();
    let window = this.windows.get(key);
    if (!window || window.endsAt <= now) {
      window = { count: 0, endsAt: now + windowMs };
      // Deleted first, so a renewed window moves to the end: the first one is the oldest.
      this.windows.delete(key);
      this.windows.set(key, window);
      if (this.windows.size > this.maxKeys) this.evictOldest(now);
    }
    window.count++;
    return decision(window.count, limit, window.endsAt - now);
  }

  /** Windows held now. */
  get size(): number {
    return this.windows.size;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
  }

  private evictOldest(now: number): void {
    const [oldest, window] = this.windows.entries().next().value!;
    this.windows.delete(oldest);
    if (window.endsAt > now && now - this.lastWarning >= 60_000) {
      this.lastWarning = now;
      this.logger.warn({ event: 'rate_limit.memory_full', max_keys: this.maxKeys }, 'rate-limit store full: open windows are dropped, oldest first');
    }
  }

  private sweep(): void {
    const now = this.now();
    for (const [key, window] of this.windows) if (window.endsAt <= now) this.windows.delete(key);
  }
}

// INCR and the expiry of a new window in one round trip, atomically for every replica.
const HIT = `
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}`;

/**
 * Windows shared by every replica through Redis (MEDIA_REDIS_URL). When Redis does not answer,
 * requests are let through and the outage is logged: rate limiting must not take the API down.
 */
export class RedisRateLimiter extends RateLimiter {
  private readonly logger = new Logger('rate-limit');
  private lastWarning = 0;

  constructor(
    private readonly redis: Redis,
    private readonly prefix = 'jan-media:rl:',
  ) {
    super();
    // The client's own connection errors (each reconnect while Redis is away): without a listener
    // ioredis prints every one as an unstructured "Unhandled error event" line.
    redis.on('error', (error: Error) => this.warnUnavailable(error));
  }

  async hit(key: string, limit: number, windowMs: number): Promise<RateDecision> {
    try {
      const [count, ttl] = (await this.redis.eval(HIT, 1, this.prefix + key, String(windowMs))) as [number, number];
      return decision(Number(count), limit, Number(ttl));
    } catch (error) {
      this.warnUnavailable(error as Error);
      return { allowed: true, limit, remaining: limit, resetMs: windowMs };
    }
  }

  /** One structured warning per 10 s of outage, however many commands and reconnects fail. */
  private warnUnavailable(error: Error): void {
    if (Date.now() - this.lastWarning <= 10_000) return;
    this.lastWarning = Date.now();
    this.logger.warn({ event: 'rate_limit.redis_unavailable', err: error.message }, 'Redis unavailable: not rate limiting');
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

function decision(count: number, limit: number, resetMs: number): RateDecision {
  return { allowed: count <= limit, limit, remaining: Math.max(0, limit - count), resetMs: Math.max(0, resetMs) };
}
