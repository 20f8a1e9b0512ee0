import { DomainError } from '../media/errors';

/** Per-owner limits; 0 means unlimited. */
export interface QuotaLimits {
  maxBytes: number;
  maxObjects: number;
}

export interface OwnerUsage {
  objects: number;
  bytes: number;
}

const UNLIMITED: QuotaLimits = Object.freeze({ maxBytes: 0, maxObjects: 0 });

/**
 * How much one owner may keep. The repository enforces the limits atomically when a row is
 * inserted or grows; use cases may check early to avoid storing bytes that would be refused.
 */
export abstract class QuotaPolicy {
  abstract limitsFor(ownerId: string): QuotaLimits;
}

/** The same limits for every owner (MEDIA_QUOTA_BYTES, MEDIA_QUOTA_OBJECTS). */
export class FixedQuotaPolicy extends QuotaPolicy {
  private readonly limits: QuotaLimits;

  constructor(limits: QuotaLimits = UNLIMITED) {
    super();
    this.limits = Object.freeze({ ...limits });
  }

  limitsFor(): QuotaLimits {
    return this.limits;
  }
}

/** True when adding `add` to `usage` would go past a non-zero limit. */
export function exceedsQuota(usage: OwnerUsage, add: OwnerUsage, limits: QuotaLimits): boolean {
  if (limits.maxObjects > 0 && add.objects > 0 && usage.objects + add.objects > limits.maxObjects) return true;
  if (limits.maxBytes > 0 && add.bytes > 0 && usage.bytes + add.bytes > limits.maxBytes) return true;
  return false;
}

/**
 * The one error every quota refusal carries; details tell the owner what is left. A limit of 0
 * (unlimited) is `null`, as `GET /v1/usage` answers it: a `0` read as "no bytes allowed" would
 * send the owner after the wrong limit.
 */
export function quotaExceeded(limits: QuotaLimits, usage: OwnerUsage): DomainError {
  return new DomainError('quota_exceeded', 'storage quota exceeded: delete objects or ask an operator for more', {
    quota_bytes: limits.maxBytes > 0 ? limits.maxBytes : null,
    quota_objects: limits.maxObjects > 0 ? limits.maxObjects : null,
    bytes: usage.bytes,
    objects: usage.objects,
  });
}
