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
 * could vanish at the next sweep. Null when the twin was claimed for deletion meanwhile (the
 * repository decides, against the sweep's claim): the caller then stores the bytes as a new
 * object. A twin whose retention is already within the slack of a full period is returned as
 * read: the sweep cannot take it before then.
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
