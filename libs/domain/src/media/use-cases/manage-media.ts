import type { MediaId } from '@jan/mediaid';
import type { Principal } from '../../access/principal';
import { Clock } from '../../ports/clock';
import { MediaEvents, type MediaEvent } from '../../ports/media-events';
import { MediaRepository } from '../../ports/media-repository';
import { MediaStorage } from '../../ports/media-storage';
import { DomainError, isDomainError, mediaNotFound, type ErrorCode } from '../errors';
import { uploadKeyFor, type MediaObject } from '../media-object';
import { retentionFrom, type MediaPolicy } from '../media-policy';
import { PresignCache } from '../presign-cache';
import { MediaAccess } from './media-access';

type DeleteReason = Extract<MediaEvent, { type: 'media.deleted' }>['reason'];
type ClaimOptions = { onlyIfExpired?: boolean; now?: Date };

/** An object that could not be deleted; its claimed row stays for a later sweep. */
export interface RemovalFailure {
  id: MediaId;
  code: ErrorCode;
  /** What storage (or the row delete) threw, for logs; never sent to clients. */
  error: unknown;
}

/** `removed`, `skipped` (no longer expired, pinned meanwhile, or gone), or why it failed. */
export type RemoveOutcome = 'removed' | 'skipped' | RemovalFailure;

export interface RetentionSweep {
  removed: number;
  failed: RemovalFailure[];
}

/** Pin, unpin, delete, and the retention sweep. */
export class ManageMedia {
  constructor(
    private readonly access: MediaAccess,
    private readonly repository: MediaRepository,
    private readonly storage: MediaStorage,
    private readonly cache: PresignCache,
    private readonly clock: Clock,
    private readonly events: MediaEvents,
    private readonly policy: Pick<MediaPolicy, 'retentionDays'>,
  ) {}

  /**
   * Pinned objects are kept past retention; unpinning restarts the retention clock. A direct upload
   * not completed yet cannot be pinned (409): an abandoned reservation is reaped at its deadline
   * whatever it says, so a `pinned: true` on it would be a promise the sweep breaks. A closed one
   * (past its deadline, or claimed for deletion) is on its way out: 404.
   */
  async setPinned(principal: Principal, rawId: string, pinned: boolean): Promise<MediaObject> {
    const media = await this.access.readable(principal, rawId, pinned ? 'pin' : 'unpin', { allowPending: true });
    const now = this.clock.now();
    // A replica may not have seen the complete yet: the pending answer is checked on the primary.
    const current = media.status === 'pending' ? await this.repository.findById(media.id, { fresh: true }) : media;
    if (!current || current.claimedAt) throw mediaNotFound();
    if (current.status === 'pending') {
      if (current.uploadExpiresAt && current.uploadExpiresAt <= now) throw mediaNotFound();
      throw new DomainError('media_not_ready', 'the upload is not complete: pin it once complete has answered');
    }
    const updated = await this.repository.setPinned(media.id, pinned, pinned ? null : retentionFrom(now, this.policy), now);
    if (!updated) throw mediaNotFound();
    this.events.emit({ type: 'media.pinned', principal, media: updated, pinned });
    return updated;
  }

  async delete(principal: Principal, rawId: string): Promise<MediaObject> {
    const media = await this.access.readable(principal, rawId, 'delete', { allowPending: true, allowClaimed: true });
    // Gone between the lookup and the claim (a concurrent DELETE, or the sweep): as if never there.
    if (!(await this.remove(media, principal, principal.kind === 'admin' ? 'admin' : 'request'))) throw mediaNotFound();
    return media;
  }

  /**
   * Deletes expired objects in batches: unpinned ready objects past retention and pending uploads
   * past their deadline. Each row is claimed in the database only if it is still expired then, so
   * an object pinned (or kept alive by a dedupe) after the batch was read stays.
   *
   * An object that cannot be deleted (storage refuses: object lock, retention hold, access denied
   * on one key) is counted in `failed` and skipped. Its row stays claimed, and claimed rows come
   * after every unclaimed expired row (`findExpired`): this sweep does not try it again, and later
   * sweeps take what expired since first, then the claimed rows, those tried longest ago first,
   * with the budget left. However many objects are stuck, new expiries are deleted. Database
   * failures end the sweep.
   *
   * `signal` stops the sweep after the object being removed (a shutdown): what is left expired
   * waits for the next sweep, of this replica or another.
   */
  async purgeExpired(batchSize = 100, maxBatches = 100, options: { signal?: AbortSignal } = {}): Promise<RetentionSweep> {
    const now = this.clock.now();
    const sweep: RetentionSweep = { removed: 0, failed: [] };
    const tried = new Set<string>();
    for (let batch = 0; batch < maxBatches && !options.signal?.aborted; batch++) {
      const expired = await this.repository.findExpired(now, batchSize);
      const fresh = expired.filter((media) => !tried.has(media.id));
      // Only rows this sweep already failed on are left: it is done.
      if (fresh.length === 0) break;
      for (const media of fresh) {
        if (options.signal?.aborted) return sweep;
        tried.add(media.id);
        const reason = sweepReason(media);
        const outcome = await this.removeOrReport(media, null, reason, { onlyIfExpired: true, now });
        if (outcome === 'removed') sweep.removed++;
        else if (outcome !== 'skipped') sweep.failed.push(outcome);
      }
      if (expired.length < batchSize) break;
    }
    return sweep;
  }

  /**
   * Removes an object whose access the caller already checked (operator purge), reporting a
   * failure to remove it instead of throwing; database failures still throw. With
   * `onlyIfExpired`, only while it is still expired (`skipped` otherwise, or when it is gone).
   */
  removeChecked(media: MediaObject, principal: Principal, reason: DeleteReason, options: { onlyIfExpired?: boolean } = {}): Promise<RemoveOutcome> {
    return this.removeOrReport(media, principal, reason, options);
  }

  private async removeOrReport(media: MediaObject, principal: Principal | null, reason: DeleteReason, options: ClaimOptions): Promise<RemoveOutcome> {
    const claimed = await this.claim(media, options);
    if (!claimed) return 'skipped';
    try {
      await this.finish(media, claimed, principal, reason);
      return 'removed';
    } catch (error) {
      if (isDomainError(error, 'database_unavailable')) throw error;
      return { id: media.id, code: isDomainError(error) ? error.code : 'internal_error', error };
    }
  }

  /**
   * Row claimed first, then the object, then the row. The claim (one conditional statement, see
   * `MediaRepository.claimForDeletion`) is what a concurrent pin, dedupe or direct-upload complete
   * serializes with: an object that one of them kept is never claimed, and a claimed one is no
   * longer served, pinned, deduped against or made ready, whatever clocks they read. A failure
   * after the claim leaves a closed row that the next sweep retries, never an object without a
   * row. False when there was nothing (left) to claim.
   */
  private async remove(media: MediaObject, principal: Principal | null, reason: DeleteReason): Promise<boolean> {
    const claimed = await this.claim(media, {});
    if (!claimed) return false;
    await this.finish(media, claimed, principal, reason);
    return true;
  }

  private claim(media: MediaObject, options: ClaimOptions): Promise<MediaObject | null> {
    return this.repository.claimForDeletion(media.id, options.now ?? this.clock.now(), { onlyIfExpired: options.onlyIfExpired });
  }

  private async finish(media: MediaObject, claimed: MediaObject, principal: Principal | null, reason: DeleteReason): Promise<void> {
    let removed: boolean;
    try {
      removed = await this.removeClaimed(media, claimed);
    } catch (error) {
      // Recorded (audit trail, logs), so an admin's describe shows why the object lingers.
      this.events.emit({ type: 'media.delete_failed', principal, media, reason, code: isDomainError(error) ? error.code : 'internal_error' });
      throw error;
    }
    // Another sweep that claimed the same closed row may have finished first: one deletion, one event.
    if (removed) this.events.emit({ type: 'media.deleted', principal, media, reason });
  }

  /**
   * Removes an object whose ingest was refused after it was stored and never announced (its
   * `ingest.accepted` held back): no deletion event either, so the trail and the metrics show the
   * one refused ingest the caller saw, not an upload and a deletion. Claimed first like any
   * deletion, but unconditionally: a concurrent upload of the same bytes by the same owner that
   * found this object as its twin in the moment between its insert and this claim has answered
   * `deduped: true` with this id, and that id is gone right after (a fresh object's retention is
   * full, so the dedupe wrote nothing a claim could check). What the claim does guarantee: a
   * dedupe that comes after it stores the bytes as a new object, and the object is never left
   * without a row.
   */
  async discardUnannounced(media: MediaObject): Promise<void> {
    const claimed = await this.claim(media, {});
    if (claimed) await this.removeClaimed(media, claimed);
  }

  /** The claimed row's bytes, then the row; true when this call deleted the row. */
  private async removeClaimed(media: MediaObject, claimed: MediaObject): Promise<boolean> {
    // A reservation's bytes may still sit at its upload key.
    if (media.status === 'pending') await this.storage.delete(uploadKeyFor(claimed.storageKey));
    await this.storage.delete(claimed.storageKey);
    this.cache.invalidate(claimed.storageKey);
    return this.repository.delete(claimed.id);
  }
}

/**
 * What the sweep deletes `media` as. A row claimed before (a deletion the storage refused, or one
 * another replica is finishing) reads as a closed reservation whatever it was; only a ready object
 * has a retention date or a pin (a reservation and an ingest's pending row have neither), so the
 * retried deletion of an expired object is still counted as retention, not as an abandoned upload.
 */
function sweepReason(media: MediaObject): DeleteReason {
  return media.status === 'pending' && media.retentionUntil === null && !media.pinned ? 'upload_expired' : 'retention';
}
