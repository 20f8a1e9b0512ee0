import { CanActivate, ExecutionContext, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { DomainError, type Principal } from '@jan/domain';
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

const BY_ADDRESS = 'jan:rate-limit-by-address';

/**
 * Public routes that are limited per client address when `MEDIA_RATE_LIMIT_PUBLIC` is set: the
 * signed-URL routes, which carry no principal. Off by default: model providers fetch many images
 * from few addresses.
 */
export const RateLimitByAddress = () => SetMetadata(BY_ADDRESS, true);

/**
 * Limits each principal after authentication. End users are counted by subject whichever way
 * they arrive (their own token, or llm-api acting for them), so a user cannot multiply their
 * budget through a service. Admins, public routes (health, metrics, signed URLs) are not limited.
 */
@Injectable()
export class RateLimitGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly limiter: RateLimiter,
    private readonly settings: RateLimitSettings,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const request = http.getRequest<WithPrincipal>();
    let bucket: { key: string; limit: number } | null;
    if (isPublic(this.reflector, context)) {
      const byAddress = this.reflector.getAllAndOverride<boolean>(BY_ADDRESS, [context.getHandler(), context.getClass()]);
      const perAddress = this.settings.perAddress ?? 0;
      bucket = byAddress && perAddress > 0 ? { key: `ip:${request.ip}`, limit: perAddress } : null;
    } else {
      bucket = request.principal ? bucketOf(request.principal, this.settings) : null;
    }
    if (!bucket) return true;
    const windowMs = this.settings.windowSeconds * 1000;
    const decision = await this.limiter.hit(bucket.key, bucket.limit, windowMs);
    const reset = Math.max(1, Math.ceil(decision.resetMs / 1000));
    void http
      .getResponse<FastifyReply>()
      .header('ratelimit-limit', String(decision.limit))
      .header('ratelimit-remaining', String(decision.remaining))
      .header('ratelimit-reset', String(reset));
    if (!decision.allowed) {
      throw new DomainError('rate_limited', 'too many requests; retry after the time in Retry-After', { retry_after_seconds: reset, limit: decision.limit });
    }
    return true;
  }
}

export function bucketOf(principal: Principal, settings: RateLimitSettings): { key: string; limit: number } | null {
  switch (principal.kind) {
    case 'admin':
      return null;
    case 'user':
      return settings.perUser > 0 ? { key: `user:${principal.subject}`, limit: settings.perUser } : null;
    case 'service':
      if (principal.actingFor) return settings.perUser > 0 ? { key: `user:${principal.actingFor}`, limit: settings.perUser } : null;
      return settings.perService > 0 ? { key: `service:${principal.serviceId}`, limit: settings.perService } : null;
  }
}
