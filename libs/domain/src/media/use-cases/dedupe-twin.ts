import { MediaRepository } from '../../ports/media-repository';
import type { MediaObject } from '../media-object';
import { retentionFrom, type MediaPolicy } from '../media-policy';

/**
 * How far a twin's retention may lag behind a full period from now before a dedupe hit writes a
 * new one: repeated uploads of the same bytes cost at most one write per object per hour.
 */
const KEEP_ALIVE_SLACK_MS = 3_600_000;

/**
 * The twin a dedupe hit answers with, kept for a full retention period from `now` as if its bytes
 * had just been uploaded (they were): without this, an upload acknowledged with `deduped: true`
 * could vanish at the next sweep. When a write is due, the repository decides against any claim
 * of the twin: null when it was claimed for deletion or deleted meanwhile, and the caller then
 * stores the bytes as a new object.
 *
 * A twin whose retention is already within the slack of a full period is returned as read,
 * without writing: the sweep cannot take it for retention before then, and `twin` was live on
 * the primary when it was read (`findReadyByOwnerAndSha256` confirms a replica's answer there;
 * `markReady`'s twin is the primary's). An owner's or operator's deletion that claims it after
 * that read deletes it as it would an object uploaded just before the deletion.
 */
export async function keepTwinAlive(
  repository: MediaRepository,
  twin: MediaObject,
  now: Date,
  policy: Pick<MediaPolicy, 'retentionDays'>,
): Promise<MediaObject | null> {
  const target = retentionFrom(now, policy);
  const due = !twin.pinned && twin.retentionUntil !== null && (target === null || twin.retentionUntil.getTime() < target.getTime() - KEEP_ALIVE_SLACK_MS);
  return due ? repository.keepAlive(twin.id, target, now) : twin;
}
