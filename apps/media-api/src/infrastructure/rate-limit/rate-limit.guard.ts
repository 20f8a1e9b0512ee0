import { CanActivate, ExecutionContext, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { DomainError, isUserId, type Principal } from '@jan/domain';
import type { FastifyReply } from 'fastify';
import { isPublic, type WithPrincipal } from '../../auth/auth.guard';
import { RateLimiter } from './rate-limiter';

export interface RateLimitSettings {
  /** Requests per window for each end user (directly, or through a service acting for them). 0 = off. */
  perUser: number;
  /** Requests per window for each service acting for nobody. 0 = off. */
  perService: number;
  windowSeconds: number;
  /** Requests per window for each client address on signed-URL routes. 0 = off. */
  perAddress?: number;
}

export interface Bucket {
  key: string;
  limit: number;
}

const BY_ADDRESS = 'jan:rate-limit-by-address';
const OWNER_IN_STREAM = 'jan:rate-limit-owner-in-stream';

/**
 * Public routes that are limited per client address when `MEDIA_RATE_LIMIT_PUBLIC` is set: the
 * signed-URL routes, which carry no principal. Off by default: model providers fetch many images
 * from few addresses.
 */
export const RateLimitByAddress = () => SetMetadata(BY_ADDRESS, true);

/**
 * Routes whose owner may be named in the request body's stream (the multipart `user_id` field),
 * which the guard cannot see. The guard leaves a service acting for nobody uncounted there; the
 * controller counts the request with `RateLimits.charge` once it knows who it is for, before the
 * work is done.
 */
export const RateLimitOwnerInStream = () => SetMetadata(OWNER_IN_STREAM, true);

/** The limiter and its settings, shared by the guard and the routes that count late. */
export class RateLimits {
  constructor(
    private readonly limiter: RateLimiter,
    readonly settings: RateLimitSettings,
  ) {}

  /**
   * Counts one request against `bucket`, sets the `RateLimit-*` headers, and throws
   * `rate_limited` when the bucket is spent.
   */
  async charge(bucket: Bucket | null, reply: FastifyReply): Promise<void> {
    if (!bucket) return;
    const decision = await this.limiter.hit(bucket.key, bucket.limit, this.settings.windowSeconds * 1000);
    const reset = Math.max(1, Math.ceil(decision.resetMs / 1000));
    void reply
      .header('ratelimit-limit', String(decision.limit))
      .header('ratelimit-remaining', String(decision.remaining))
      .header('ratelimit-reset', String(reset));
    if (!decision.allowed) {
      throw new DomainError('rate_limited', 'too many requests; retry after the time in Retry-After', { retry_after_seconds: reset, limit: decision.limit });
    }
  }
}

/**
 * Limits each principal after authentication. End users are counted by subject whichever way
 * they arrive (their own token, or llm-api acting for them by header or by a body's `user_id`),
 * so a user cannot multiply their budget through a service. Admins, public routes (health,
 * metrics, signed URLs) are not limited.
 */
@Injectable()
export class RateLimitGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly limits: RateLimits,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const request = http.getRequest<WithPrincipal>();
    const settings = this.limits.settings;
    let bucket: Bucket | null;
    if (isPublic(this.reflector, context)) {
      const byAddress = this.reflector.getAllAndOverride<boolean>(BY_ADDRESS, [context.getHandler(), context.getClass()]);
      const perAddress = settings.perAddress ?? 0;
      bucket = byAddress && perAddress > 0 ? { key: `ip:${request.ip}`, limit: perAddress } : null;
    } else {
      const principal = request.principal;
      if (!principal) return true;
      // The route counts this request itself once the owner has been read from the stream.
      if (namesNobody(principal) && this.reflector.get<boolean>(OWNER_IN_STREAM, context.getHandler())) return true;
      bucket = bucketOf(principal, settings, bodyUserId(request.body));
    }
    await this.limits.charge(bucket, http.getResponse<FastifyReply>());
    return true;
  }
}

/**
 * The bucket a request is counted in. `bodyUserId` is the `user_id` the request names in its
 * body (JSON or multipart), which makes a service acting for nobody act for that user; when it
 * disagrees with `X-Jan-User-Id` or is malformed the request is refused later, and the header (or
 * the service) is counted.
 */
export function bucketOf(principal: Principal, settings: RateLimitSettings, bodyUserId?: string): Bucket | null {
  switch (principal.kind) {
    case 'admin':
      return null;
    case 'user':
      return settings.perUser > 0 ? { key: `user:${principal.subject}`, limit: settings.perUser } : null;
    case 'service': {
      // Trimmed as resolveOwner trims it, so " u1" is the same user as "u1".
      const named = bodyUserId?.trim();
      const user = principal.actingFor ?? (named && isUserId(named) ? named : null);
      if (user) return settings.perUser > 0 ? { key: `user:${user}`, limit: settings.perUser } : null;
      return settings.perService > 0 ? { key: `service:${principal.serviceId}`, limit: settings.perService } : null;
    }
  }
}

/** A service or admin that names no user in its headers. */
function namesNobody(principal: Principal): boolean {
  return principal.kind !== 'user' && principal.actingFor === null;
}

/** `user_id` of a parsed JSON object body (ingest, prepare-upload); raw and multipart bodies have none here. */
function bodyUserId(body: unknown): string | undefined {
  if (!body || typeof body !== 'object' || Array.isArray(body) || Buffer.isBuffer(body)) return undefined;
  const value = (body as { user_id?: unknown }).user_id;
  return typeof value === 'string' ? value : undefined;
}
