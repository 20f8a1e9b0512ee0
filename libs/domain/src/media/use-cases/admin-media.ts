import { parseMediaId, type MediaId } from '@jan/mediaid';
import { isOwnerName, type Principal } from '../../access/principal';
import { AuditTrail, type AuditEntry } from '../../ports/audit-trail';
import { Clock } from '../../ports/clock';
import { MediaEvents } from '../../ports/media-events';
import { MediaRepository, type MediaListFilter } from '../../ports/media-repository';
import { QuotaPolicy, type OwnerUsage, type QuotaLimits } from '../../ports/quota-policy';
import { DomainError, mediaNotFound, type ErrorCode } from '../errors';
import type { MediaObject } from '../media-object';
import { ManageMedia } from './manage-media';
import { MediaAccess } from './media-access';
import { PresignMedia, type PresignedUrl } from './presign-media';

export interface PurgeCommand {
  ids?: readonly string[];
  expired?: boolean;
  owner?: string;
  dryRun?: boolean;
}

/** An object the purge could not delete (storage refused); the retention sweep retries it. */
export interface PurgeFailure {
  id: MediaId;
  code: ErrorCode;
}

export interface PurgeResult {
  purged: MediaId[];
  /** Objects that could not be deleted; the others were. */
  failed: PurgeFailure[];
  dryRun: boolean;
  /** True when the per-call cap stopped the purge early; call again for the rest. */
  truncated: boolean;
}

export interface MediaPage {
  items: MediaObject[];
  nextCursor: MediaId | null;
}

/** Longest URL an operator may reissue: S3's and GCS's own limit for V4 signatures. */
export const MAX_REISSUE_TTL_SECONDS = 7 * 86_400;
const PAGE_MAX = 200;
const PURGE_BATCH = 200;
/** One call deletes at most this many objects, so one request cannot run for hours. */
export const PURGE_MAX_PER_CALL = 10_000;

/**
 * What operators may do across owners: describe, list, purge, reissue URLs, read usage. Every
 * method re-checks that the principal is an admin; the HTTP layer hides the routes from others.
 */
export class AdminMedia {
  constructor(
    private readonly access: MediaAccess,
    private readonly repository: MediaRepository,
    private readonly manage: ManageMedia,
    private readonly presign: PresignMedia,
    private readonly audit: AuditTrail,
    private readonly quota: QuotaPolicy,
    private readonly clock: Clock,
    private readonly events: MediaEvents,
    private readonly policy: { presignTtlSeconds: number },
  ) {}

  async describe(principal: Principal, rawId: string, auditLimit = 20): Promise<{ media: MediaObject; events: AuditEntry[] }> {
    requireAdmin(principal);
    const media = await this.access.readable(principal, rawId, 'describe', { allowPending: true });
    return { media, events: await this.audit.recent(media.id, auditLimit) };
  }

  async list(principal: Principal, query: { owner?: string; cursor?: string; limit?: number }): Promise<MediaPage> {
    requireAdmin(principal);
    const limit = Math.min(Math.max(1, Math.floor(query.limit ?? 50)), PAGE_MAX);
    let afterId: MediaId | undefined;
    if (query.cursor) {
      const parsed = parseMediaId(query.cursor);
      if (!parsed) throw new DomainError('invalid_request', 'cursor must be a media id returned as next_cursor');
      afterId = parsed;
    }
    // One row more than asked tells whether another page exists without a count query.
    const rows = await this.repository.list({ ownerId: ownerFilter(query.owner), afterId, limit: limit + 1 });
    const items = rows.slice(0, limit);
    return { items, nextCursor: rows.length > limit ? items[items.length - 1].id : null };
  }

  /**
   * Deletes the objects matching every given filter (ids, owner, expired). At least one filter is
   * required so that an empty body can never mean "everything". Unknown ids are skipped. An
   * object storage refuses to delete is reported in `failed` and the purge goes on.
   */
  async purge(principal: Principal, command: PurgeCommand): Promise<PurgeResult> {
    requireAdmin(principal);
    // null, as class-validator's @IsOptional lets it through, is an absent filter.
    const hasIds = command.ids != null && command.ids.length > 0;
    const ownerId = ownerFilter(command.owner);
    if (!hasIds && !command.expired && !ownerId) {
      throw new DomainError('invalid_request', 'purge needs at least one of ids, owner or expired: true');
    }
    const ids = hasIds ? [...new Set(command.ids!.map((raw) => parseMediaId(raw)).filter((id): id is MediaId => id !== null))] : undefined;
    if (hasIds && ids!.length === 0) return { purged: [], failed: [], dryRun: !!command.dryRun, truncated: false };

    const base: Omit<MediaListFilter, 'limit' | 'afterId'> = {
      ids,
      ownerId,
      expiredAt: command.expired ? this.clock.now() : undefined,
    };
    const purged: MediaId[] = [];
    const failed: PurgeFailure[] = [];
    const dryRun = !!command.dryRun;
    // An expiry purge deletes only what is still expired when its row is claimed: an object
    // pinned after it was listed stays (and is not reported as purged).
    const onlyIfExpired = !!command.expired;
    let looked = 0;
    let afterId: MediaId | undefined;
    for (;;) {
      const limit = Math.min(PURGE_BATCH, PURGE_MAX_PER_CALL - looked);
      const batch = await this.repository.list({ ...base, afterId, limit });
      for (const media of batch) {
        looked++;
        if (!dryRun) {
          const outcome = await this.manage.removeChecked(media, principal, 'purge', { onlyIfExpired });
          if (outcome === 'skipped') continue;
          // Reported and left (its row claimed) for the retention sweep; the rest go on.
          if (outcome !== 'removed') {
            failed.push({ id: outcome.id, code: outcome.code });
            continue;
          }
        }
        purged.push(media.id);
      }
      if (batch.length > 0) afterId = batch[batch.length - 1].id;
      if (batch.length < limit) return { purged, failed, dryRun, truncated: false };
      if (looked >= PURGE_MAX_PER_CALL) {
        const more = await this.repository.list({ ...base, afterId, limit: 1 });
        return { purged, failed, dryRun, truncated: more.length > 0 };
      }
    }
  }

  /** A fresh URL, never taken from the cache (e.g. after a leaked one was reported). */
  async reissue(principal: Principal, rawId: string, ttlSeconds?: number): Promise<{ media: MediaObject; signed: PresignedUrl }> {
    requireAdmin(principal);
    const ttl = ttlSeconds ?? this.policy.presignTtlSeconds;
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_REISSUE_TTL_SECONDS) {
      throw new DomainError('invalid_request', `ttl_seconds must be an integer between 1 and ${MAX_REISSUE_TTL_SECONDS}`);
    }
    const media = await this.access.readable(principal, rawId, 'reissue');
    // An explicit lifetime bypasses the presign cache (see PresignMedia.sign).
    const signed = await this.presign.sign(media, { ttlSeconds: ttl });
    this.events.emit({ type: 'media.reissued', principal, media, ttlSeconds: ttl });
    return { media, signed };
  }

  async usage(principal: Principal, ownerId: string): Promise<{ usage: OwnerUsage; limits: QuotaLimits }> {
    requireAdmin(principal);
    if (!ownerFilter(ownerId)) throw new DomainError('invalid_request', 'owner is required');
    return { usage: await this.repository.usage(ownerId), limits: this.quota.limitsFor(ownerId) };
  }
}

/** An owner filter: absent when empty, refused when it cannot name any owner. */
function ownerFilter(owner: string | null | undefined): string | undefined {
  if (!owner) return undefined;
  if (!isOwnerName(owner)) throw new DomainError('invalid_request', 'owner must not contain control characters');
  return owner;
}

/** Defence in depth: the HTTP layer already answers non-admins as if the route did not exist. */
function requireAdmin(principal: Principal): void {
  if (principal.kind !== 'admin') throw mediaNotFound();
}
