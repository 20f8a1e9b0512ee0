import { parseMediaId } from '@jan/mediaid';
import { canRead, type Principal } from '../../access/principal';
import { Clock } from '../../ports/clock';
import { MediaEvents } from '../../ports/media-events';
import { MediaRepository } from '../../ports/media-repository';
import { mediaNotFound } from '../errors';
import { isServable, type MediaObject } from '../media-object';
import type { PendingUploadCompleter } from './pending-upload-completer';

export interface ReadableOptions {
  allowPending?: boolean;
  allowClaimed?: boolean;
  /**
   * Read paths (serve, presign): a pending direct upload the principal may read is verified now,
   * as `complete` would, and served when that succeeds. Ready rows never reach it.
   */
  completer?: PendingUploadCompleter;
}

/**
 * Loads one object the principal may use. Missing, malformed, pending, expired (past retention,
 * not yet swept) and someone else's ids all produce the same `media_not_found`, so ids cannot be
 * probed. `allowPending` (describe, pin, delete, complete) also lets pending and expired rows through,
 * but not rows claimed for deletion, which only admins and `allowClaimed` (DELETE) still see.
 * With a `completer`, a pending direct upload whose bytes have arrived is completed on first use.
 */
export class MediaAccess {
  constructor(
    private readonly repository: MediaRepository,
    private readonly events: MediaEvents,
    private readonly clock: Clock,
  ) {}

  async readable(principal: Principal, rawId: string, action: string, options: ReadableOptions = {}): Promise<MediaObject> {
    const id = parseMediaId(rawId);
    if (!id) throw mediaNotFound();
    const media = await this.repository.findById(id);
    if (!media) throw mediaNotFound();
    if (!canRead(principal, media)) {
      this.events.emit({ type: 'access.denied', principal, action, mediaIds: [id] });
      throw mediaNotFound();
    }
    // Claimed for deletion: gone for everyone but an admin, whose describe shows why it lingers,
    // and a DELETE (`allowClaimed`), whose retry after a failed removal must try again, not 404.
    if (media.claimedAt && principal.kind !== 'admin' && !options.allowClaimed) throw mediaNotFound();
    if (options.allowPending || isServable(media, this.clock.now())) return media;
    const completed = media.status === 'pending' && options.completer ? await options.completer.completeOnFirstUse(principal, media) : null;
    if (!completed) throw mediaNotFound();
    return completed;
  }
}
