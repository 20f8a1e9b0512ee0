import type { MediaId } from '@jan/mediaid';
import { mediaNotFound } from '../media/errors';
import type { MediaObject } from '../media/media-object';
import { MediaRepository, type InsertOptions, type InsertResult, type MediaListFilter } from '../ports/media-repository';
import { exceedsQuota, quotaExceeded, type QuotaLimits } from '../ports/quota-policy';

/** The repository contract in memory, including the per-owner dedupe rule of the unique index. */
export class InMemoryMediaRepository extends MediaRepository {
  readonly rows = new Map<string, MediaObject>();
  /** Counts calls, so tests can assert "one query per request". */
  queries = 0;
  /** Set to make the next insert fail, as a database outage would. */
  failNextInsert: Error | null = null;
  /** Ids claimed for deletion (the table's `claimed_at`): refused to pins, keep-alives and markReady. */
  private readonly claimed = new Set<string>();

  async findById(id: MediaId) {
    this.queries++;
    return clone(this.rows.get(id));
  }

  async findByIds(ids: readonly MediaId[]) {
    this.queries++;
    return ids.map((id) => this.rows.get(id)).filter((m): m is MediaObject => !!m).map((m) => clone(m)!);
  }

  async findReadyByOwnerAndSha256(ownerId: string, sha256: string) {
    this.queries++;
    return clone(this.twin(ownerId, sha256));
  }

  async insert(media: MediaObject, limits?: QuotaLimits, options: InsertOptions = {}): Promise<InsertResult> {
    this.queries++;
    if (this.failNextInsert) {
      const error = this.failNextInsert;
      this.failNextInsert = null;
      throw error;
    }
    if (this.rows.has(media.id)) throw new Error(`duplicate id ${media.id}`);
    if ((media.status === 'ready' || options.unlessTwin) && media.sha256) {
      const twin = this.twin(media.ownerId, media.sha256);
      if (twin) return { inserted: false, existing: clone(twin)! };
    }
    if (limits) {
      const usage = this.usageOf(media.ownerId);
      if (exceedsQuota(usage, { objects: 1, bytes: media.bytes }, limits) && !this.hasPendingTwin(media)) throw quotaExceeded(limits, usage);
    }
    this.rows.set(media.id, clone(media)!);
    return { inserted: true, media: clone(media)! };
  }

  /** Another open pending row of the owner with the same sha256 (see `MediaRepository.insert`). */
  private hasPendingTwin(media: MediaObject): boolean {
    if (media.status !== 'pending' || !media.sha256) return false;
    for (const row of this.rows.values()) {
      if (row.id === media.id || row.ownerId !== media.ownerId || row.sha256 !== media.sha256 || row.status !== 'pending') continue;
      if (row.bytes !== media.bytes || row.originalSha256 !== media.originalSha256) continue;
      if (this.claimed.has(row.id) || (row.uploadExpiresAt && row.uploadExpiresAt <= media.createdAt)) continue;
      return true;
    }
    return false;
  }

  async markReady(
    { id }: Pick<MediaObject, 'id' | 'ownerId'>,
    facts: Pick<MediaObject, 'bytes' | 'sha256' | 'mimeType' | 'retentionUntil'>,
    now: Date,
    limits?: QuotaLimits,
    options: { besideTwin?: boolean } = {},
  ): Promise<InsertResult> {
    this.queries++;
    const row = this.rows.get(id);
    if (!row || this.claimed.has(id)) throw mediaNotFound([id]);
    if (row.status === 'ready') return { inserted: true, media: clone(row)! };
    const twin = facts.sha256 && !options.besideTwin ? this.twin(row.ownerId, facts.sha256) : undefined;
    if (twin && twin.id !== id) return { inserted: false, existing: clone(twin)! };
    if (limits) {
      const usage = this.usageOf(row.ownerId);
      // A copy beside a twin must fit whole, beside everything else (see the PostgreSQL repository).
      const others = { objects: usage.objects - 1, bytes: usage.bytes - row.bytes };
      if (options.besideTwin ? exceedsQuota(others, { objects: 1, bytes: facts.bytes }, limits) : exceedsQuota(usage, { objects: 0, bytes: facts.bytes - row.bytes }, limits)) {
        throw quotaExceeded(limits, usage);
      }
    }
    Object.assign(row, facts, { status: 'ready', updatedAt: now, uploadExpiresAt: null });
    return { inserted: true, media: clone(row)! };
  }

  async setPinned(id: MediaId, pinned: boolean, retentionUntil: Date | null, now: Date) {
    this.queries++;
    const row = this.rows.get(id);
    if (!row || this.claimed.has(id) || isClosed(row, now)) return null;
    Object.assign(row, { pinned, retentionUntil, updatedAt: now });
    return clone(row)!;
  }

  async keepAlive(id: MediaId, retentionUntil: Date | null, now: Date) {
    this.queries++;
    const row = this.rows.get(id);
    if (!row || row.status !== 'ready' || this.claimed.has(id)) return null;
    if (!row.pinned && row.retentionUntil !== null) {
      row.retentionUntil = retentionUntil === null || retentionUntil > row.retentionUntil ? retentionUntil : row.retentionUntil;
      row.updatedAt = now;
    }
    return clone(row)!;
  }

  async closeUpload(id: MediaId, now: Date) {
    this.queries++;
    const row = this.rows.get(id);
    if (!row || row.status !== 'pending' || this.claimed.has(id)) return false;
    Object.assign(row, { uploadExpiresAt: now, updatedAt: now, claimedAt: now });
    this.claimed.add(id);
    return true;
  }

  async claimForDeletion(id: MediaId, now: Date, options: { onlyIfExpired?: boolean } = {}) {
    this.queries++;
    const row = this.rows.get(id);
    if (!row || (options.onlyIfExpired && !isExpired(row, now))) return null;
    Object.assign(row, { status: 'pending', uploadExpiresAt: now, updatedAt: now, claimedAt: now });
    this.claimed.add(id);
    return clone(row)!;
  }

  async delete(id: MediaId) {
    this.queries++;
    this.claimed.delete(id);
    return this.rows.delete(id);
  }

  async findExpired(now: Date, limit: number) {
    this.queries++;
    const claimedLast = (m: MediaObject) => (this.claimed.has(m.id) ? 1 : 0);
    return [...this.rows.values()]
      .filter((m) => isExpired(m, now))
      .sort((a, b) => claimedLast(a) - claimedLast(b) || expiredAt(a) - expiredAt(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .slice(0, limit)
      .map((m) => clone(m)!);
  }

  async usage(ownerId: string) {
    this.queries++;
    return this.usageOf(ownerId);
  }

  async list(filter: MediaListFilter) {
    this.queries++;
    const ids = filter.ids ? new Set<string>(filter.ids) : null;
    const at = filter.expiredAt;
    return [...this.rows.values()]
      .filter((m) => !filter.ownerId || m.ownerId === filter.ownerId)
      .filter((m) => !ids || ids.has(m.id))
      .filter((m) => !filter.afterId || m.id > filter.afterId)
      .filter((m) => !at || isExpired(m, at))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .slice(0, Math.max(0, filter.limit))
      .map((m) => clone(m)!);
  }

  private usageOf(ownerId: string) {
    const mine = [...this.rows.values()].filter((m) => m.ownerId === ownerId);
    return { objects: mine.length, bytes: mine.reduce((s, m) => s + m.bytes, 0) };
  }

  async ping() {}

  /**
   * The owner's ready row with these bytes, as stored or as received. Rows made ready beside a
   * twin (first-use copies) are twins too: they never stop a copy being made (`besideTwin`), and
   * the other rows dedupe to them (the PostgreSQL statements' NOT EXISTS clauses).
   */
  private twin(ownerId: string, sha256: string) {
    return [...this.rows.values()].find((m) => m.status === 'ready' && m.ownerId === ownerId && (m.sha256 === sha256 || m.originalSha256 === sha256));
  }
}

function clone(media: MediaObject | undefined): MediaObject | null {
  return media ? { ...media } : null;
}

/** What the retention sweep deletes at `now`: ready rows past retention, closed reservations. */
function isExpired(m: MediaObject, now: Date): boolean {
  return (m.status === 'ready' && !m.pinned && m.retentionUntil !== null && m.retentionUntil <= now) || isClosed(m, now);
}

/** A pending row past its upload deadline: abandoned, discarded, or claimed for deletion. */
function isClosed(m: MediaObject, now: Date): boolean {
  return m.status === 'pending' && m.uploadExpiresAt !== null && m.uploadExpiresAt <= now;
}

/** When retention (ready) or the upload deadline (pending) ran out. */
function expiredAt(media: MediaObject): number {
  return (media.status === 'pending' ? media.uploadExpiresAt : media.retentionUntil)?.getTime() ?? Infinity;
}
