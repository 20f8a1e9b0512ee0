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
    await this.remove(media, principal, principal.kind === 'admin' ? 'admin' : 'request');
    return media;
  }

  /**
   * Deletes expired objects in batches: unpinned ready objects past retention and pending uploads
   * past their deadline. Returns how many went.
   */
  async purgeExpired(batchSize = 100, maxBatches = 100): Promise<number> {
    let removed = 0;
    for (let batch = 0; batch < maxBatches; batch++) {
      const expired = await this.repository.findExpired(this.clock.now(), batchSize);
      for (const media of expired) {
        await this.remove(media, null, media.status === 'pending' ? 'upload_expired' : 'retention');
        removed++;
      }
      if (expired.length < batchSize) break;
    }
    return removed;
  }

  /** Removes an object whose access the caller already checked (operator purge). */
  removeChecked(media: MediaObject, principal: Principal, reason: DeleteReason): Promise<void> {
    return this.remove(media, principal, reason);
  }

  /** Object first, then row: a failure in between leaves a row the next sweep retries, never an orphan. */
  /**
   * Removes an object whose ingest was refused after it was stored and never announced (its
   * `ingest.accepted` held back): no deletion event either, so the trail and the metrics show the
   * one refused ingest the caller saw, not an upload and a deletion.
   */
  async discardUnannounced(media: MediaObject): Promise<void> {
    // A reservation's bytes may still sit at its upload key.
    if (media.status === 'pending') await this.storage.delete(uploadKeyFor(media.storageKey));
    await this.storage.delete(media.storageKey);
    this.cache.invalidate(media.storageKey);
    await this.repository.delete(media.id);
  }

  private async remove(media: MediaObject, principal: Principal | null, reason: DeleteReason): Promise<void> {
    await this.discardUnannounced(media);
    this.events.emit({ type: 'media.deleted', principal, media, reason });
  }
}
