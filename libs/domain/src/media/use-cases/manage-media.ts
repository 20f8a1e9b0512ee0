import type { Principal } from '../../access/principal';
import { Clock } from '../../ports/clock';
import { MediaEvents, type MediaEvent } from '../../ports/media-events';
import { MediaRepository } from '../../ports/media-repository';
import { MediaStorage } from '../../ports/media-storage';
import { mediaNotFound } from '../errors';
import { uploadKeyFor, type MediaObject } from '../media-object';
import { retentionFrom, type MediaPolicy } from '../media-policy';
import { PresignCache } from '../presign-cache';
import { MediaAccess } from './media-access';

type DeleteReason = Extract<MediaEvent, { type: 'media.deleted' }>['reason'];

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

  /** Pinned objects are kept past retention; unpinning restarts the retention clock. */
  async setPinned(principal: Principal, rawId: string, pinned: boolean): Promise<MediaObject> {
    const media = await this.access.readable(principal, rawId, pinned ? 'pin' : 'unpin', { allowPending: true });
    const now = this.clock.now();
    const updated = await this.repository.setPinned(media.id, pinned, pinned ? null : retentionFrom(now, this.policy), now);
    if (!updated) throw mediaNotFound();
    this.events.emit({ type: 'media.pinned', principal, media: updated, pinned });
    return updated;
  }

  async delete(principal: Principal, rawId: string): Promise<MediaObject> {
    const media = await this.access.readable(principal, rawId, 'delete', { allowPending: true });
    // Gone between the lookup and the claim (a concurrent DELETE, or the sweep): as if never there.
    if (!(await this.remove(media, principal, principal.kind === 'admin' ? 'admin' : 'request'))) throw mediaNotFound();
    return media;
  }

  /**
   * Deletes expired objects in batches: unpinned ready objects past retention and pending uploads
   * past their deadline. Each row is claimed in the database only if it is still expired then, so
   * an object pinned (or kept alive by a dedupe) after the batch was read stays. Returns how many went.
   */
  async purgeExpired(batchSize = 100, maxBatches = 100): Promise<number> {
    let removed = 0;
    for (let batch = 0; batch < maxBatches; batch++) {
      const expired = await this.repository.findExpired(this.clock.now(), batchSize);
      for (const media of expired) {
        if (await this.remove(media, null, media.status === 'pending' ? 'upload_expired' : 'retention', { onlyIfExpired: true })) removed++;
      }
      if (expired.length < batchSize) break;
    }
    return removed;
  }

  /**
   * Removes an object whose access the caller already checked (operator purge). With
   * `onlyIfExpired`, only while it is still expired. False when there was nothing to remove.
   */
  removeChecked(media: MediaObject, principal: Principal, reason: DeleteReason, options: { onlyIfExpired?: boolean } = {}): Promise<boolean> {
    return this.remove(media, principal, reason, options);
  }

  /**
   * Row claimed first, then the object, then the row. The claim (one conditional statement, see
   * `MediaRepository.claimForDeletion`) is what a concurrent pin or dedupe serializes with: an
   * object that one of them kept is never claimed, and a claimed one is no longer served, pinned
   * or deduped against. A failure after the claim leaves a closed row that the next sweep
   * retries, never an object without a row. False when there was nothing (left) to claim.
   */
  private async remove(media: MediaObject, principal: Principal | null, reason: DeleteReason, options: { onlyIfExpired?: boolean } = {}): Promise<boolean> {
    const claimed = await this.repository.claimForDeletion(media.id, this.clock.now(), options);
    if (!claimed) return false;
    // A reservation's bytes may still sit at its upload key.
    if (media.status === 'pending') await this.storage.delete(uploadKeyFor(claimed.storageKey));
    await this.storage.delete(claimed.storageKey);
    this.cache.invalidate(claimed.storageKey);
    // Another sweep that claimed the same closed row may have finished first: one deletion, one event.
    if (await this.repository.delete(claimed.id)) this.events.emit({ type: 'media.deleted', principal, media, reason });
    return true;
  }
}
