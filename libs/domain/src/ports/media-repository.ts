import type { MediaId } from '@jan/mediaid';
import type { MediaObject } from '../media/media-object';
import type { OwnerUsage, QuotaLimits } from './quota-policy';

/** Which rows an operator lists or purges; every given filter must match. Ordered by id. */
export interface MediaListFilter {
  ownerId?: string;
  ids?: readonly MediaId[];
  /** Only rows that retention would delete at this instant (same rule as `findExpired`). */
  expiredAt?: Date;
  /** Keyset pagination: rows with an id greater than this one. */
  afterId?: MediaId;
  limit: number;
}

export type InsertResult =
  | { inserted: true; media: MediaObject }
  /** Another ready object of the same owner already has these bytes (concurrent dedupe). */
  | { inserted: false; existing: MediaObject };

export interface InsertOptions {
  /** A pending row: answer the owner's ready twin of its bytes instead of inserting it (see `insert`). */
  unlessTwin?: boolean;
}

/** The `media_objects` table. Implementations: TypeORM on PostgreSQL or the embedded engine. */
export abstract class MediaRepository {
  /** With `fresh`, read from the primary, never a replica that may lag behind. */
  abstract findById(id: MediaId, options?: { fresh?: boolean }): Promise<MediaObject | null>;

  /** All rows for these ids in a single query (resolve relies on this). */
  abstract findByIds(ids: readonly MediaId[]): Promise<MediaObject[]>;

  /**
   * The ready object of `ownerId` whose stored or original bytes hash to `sha256`, as the primary
   * has it at some instant during the call: a row found on a read replica is confirmed on the
   * primary (still ready, not claimed for deletion), since the replica may not have seen its
   * deletion yet. A dedupe answered with it therefore names an object that was live after the
   * upload arrived.
   */
  abstract findReadyByOwnerAndSha256(ownerId: string, sha256: string): Promise<MediaObject | null>;

  /**
   * Inserts a row. A ready row that collides with an existing ready row of the same owner and
   * sha256 is not inserted; the existing row is returned instead (the unique index decides).
   * With `limits`, the owner's usage (one more object, `media.bytes` more bytes) is checked and
   * counted in the same transaction, so concurrent inserts cannot overshoot: `quota_exceeded`.
   * A pending row whose sha256, bytes and originalSha256 the owner already has in another pending
   * row (not claimed for deletion, before its deadline) is not refused: the unique index lets at
   * most one of them become ready, so it adds nothing the owner keeps (an ingest retried while the
   * first is in flight). Equal originalSha256 keeps a reservation (which has none, and whose
   * complete may re-encode the bytes it declared) from being the twin of a re-encoded copy.
   *
   * With `unlessTwin`, a pending row is not inserted when its owner has a ready twin of
   * `media.sha256` (what `findReadyByOwnerAndSha256` finds, read on the primary): the twin is
   * returned as `existing` instead, by the same statement. An ingest of bytes stored as received
   * asks for its dedupe and its pending row in one round trip. A twin that becomes ready after
   * the statement is met by `markReady`, as before.
   */
  abstract insert(media: MediaObject, limits?: QuotaLimits, options?: InsertOptions): Promise<InsertResult>;

  /**
   * Turns a pending row into a ready one with the verified facts. Same dedupe rule as insert:
   * when a ready twin exists, nothing changes and the twin is returned. With `limits`, growth of
   * the row's bytes beyond what was declared is checked against the owner's quota atomically.
   * A row claimed for deletion (`claimForDeletion`, or `closeUpload`) is refused with
   * `media_not_found`, as a deleted one is, whatever `now` says: one conditional statement, so a
   * complete and a claim of the same row serialize, and exactly one of them wins.
   * `pending` is the row as it was inserted: its owner orders the locks that concurrent
   * completes take (as concurrent inserts take them, by owner, then sha256), which the row's id
   * alone could not.
   *
   * With `besideTwin` (a direct upload completed on first use, whose old client keeps using the
   * reservation's id), the row becomes ready even when a ready twin exists: a ready object of its
   * own, with its own stored bytes, which the dedupe rule leaves out (it never makes a twin's
   * insert or markReady fail). It is still a twin: `findReadyByOwnerAndSha256` may answer it,
   * and another row's insert or markReady (without `besideTwin`) meets it as `existing`. With
   * `limits`, it must fit whole (one object and `facts.bytes` beside the owner's other rows),
   * else `quota_exceeded`.
   */
  abstract markReady(
    pending: Pick<MediaObject, 'id' | 'ownerId'>,
    facts: Pick<MediaObject, 'bytes' | 'sha256' | 'mimeType' | 'retentionUntil'>,
    now: Date,
    limits?: QuotaLimits,
    options?: { besideTwin?: boolean },
  ): Promise<InsertResult>;

  /**
   * Pins or unpins a row. A row claimed for deletion, and a reservation whose upload deadline is
   * at or before `now` (abandoned), are left alone and answer null, as an unknown id does. The
   * claim is recognised by a marker the claim sets, not by comparing clocks: the claim and the pin
   * serialize on the row, so a pin that succeeds was never claimed, whatever `now` the pin and the
   * claimer read, and a claim never takes a row that a pin has already pinned.
   */
  abstract setPinned(id: MediaId, pinned: boolean, retentionUntil: Date | null, now: Date): Promise<MediaObject | null>;

  /**
   * A dedupe hit keeps its twin alive: an unpinned ready row's `retentionUntil` moves out to
   * `retentionUntil` (never earlier; null, "forever", wins); a pinned row, or one kept forever,
   * stays as it is. Only a row that is still ready and not claimed: null when it was claimed for
   * deletion or deleted meanwhile, and the caller must then store the bytes as a new object. One
   * conditional statement, so it serializes with `claimForDeletion` of the same row.
   */
  abstract keepAlive(id: MediaId, retentionUntil: Date | null, now: Date): Promise<MediaObject | null>;

  /**
   * Ends a pending row's upload window now (`uploadExpiresAt = now`), so that its upload URL no
   * longer accepts bytes, and claims it for deletion: the caller (a complete discarding its
   * reservation) deletes it next, so no other complete may make it ready. A row that is not
   * pending, or that another deleter claimed already (it deletes it), is left alone. True when
   * a row changed.
   */
  abstract closeUpload(id: MediaId, now: Date): Promise<boolean>;

  /**
   * The first step of every deletion, decided by the database in one statement: the row becomes
   * a closed reservation (`pending`, `uploadExpiresAt = now`) marked as claimed, which nothing
   * serves, dedupes against, pins, keeps alive or completes any more, whatever clock they read,
   * and which the retention sweep deletes (bytes, then row) if the caller fails to. With
   * `onlyIfExpired`, only a row that retention deletes at `now` (the rule of `findExpired`) is
   * claimed: one pinned, or kept alive by a dedupe, meanwhile is not. A claimed row can be claimed
   * again (a sweep retrying a failed deletion). Returns the claimed row, or null when there was
   * none to claim.
   */
  abstract claimForDeletion(id: MediaId, now: Date, options?: { onlyIfExpired?: boolean }): Promise<MediaObject | null>;

  /** Deletes the row; true when it existed. */
  abstract delete(id: MediaId): Promise<boolean>;

  /**
   * Ready rows past retention and pending rows past their upload deadline, those that expired
   * first first (by retention end or upload deadline, then id), except that rows already claimed
   * for deletion (a deletion that failed) come after all the others, those claimed longest ago
   * first: a sweep's budget goes to new expiries before retries.
   */
  abstract findExpired(now: Date, limit: number): Promise<MediaObject[]>;

  /** Bytes and object count of one owner (ready and pending). Deleting a row gives both back. */
  abstract usage(ownerId: string): Promise<OwnerUsage>;

  /** Rows matching `filter`, ordered by id, at most `filter.limit` (operator listing and purge). */
  abstract list(filter: MediaListFilter): Promise<MediaObject[]>;

  /** Cheap round trip for readiness probes. */
  abstract ping(): Promise<void>;
}
