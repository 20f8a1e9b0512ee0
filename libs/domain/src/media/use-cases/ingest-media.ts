import { newMediaId } from '@jan/mediaid';
import { isUserId, ownerFor, USER_ID_RULE, type Principal } from '../../access/principal';
import { Clock } from '../../ports/clock';
import { ContentScanner, NoContentScanner } from '../../ports/content-scanner';
import { ImageInspector } from '../../ports/image-inspector';
import { MediaEvents, type IngestSource } from '../../ports/media-events';
import { MediaRepository } from '../../ports/media-repository';
import { MediaStorage } from '../../ports/media-storage';
import { FixedQuotaPolicy, QuotaPolicy } from '../../ports/quota-policy';
import { UploadStaging, type StagedUpload, type UploadSource } from '../../ports/upload-staging';
import { DomainError, isDomainError } from '../errors';
import { rejectionReason, scanOrReject } from '../content-scan';
import { newPendingObject, type MediaObject } from '../media-object';
import { retentionFrom, type MediaPolicy } from '../media-policy';
import { normalizeMimeType, type AllowedMimeType } from '../media-types';
import { keepTwinAlive } from './dedupe-twin';

export interface IngestCommand {
  principal: Principal;
  source: IngestSource;
  body: UploadSource;
  /** What the client claimed (data-URL prefix, Content-Type, filename); never trusted. */
  declaredMimeType?: string;
  filename?: string;
  /** `user_id` from the request body; honoured only for service and admin callers. */
  userId?: string;
  /**
   * Hold the `ingest.accepted` event until the caller calls `IngestResult.accept()`: for a
   * multipart body, whose rest (a late `user_id`) may still refuse the stored upload.
   */
  deferAcceptance?: boolean;
}

/** `markReady` attempts when each ready twin it meets turns out to be claimed for deletion. */
const TWIN_ATTEMPTS = 3;

/**
 * How long an ingest's pending row waits for its object before the retention sweep may take it
 * as abandoned (a crash between writing the row and making it ready). Only the decode check and
 * the scan (for bytes stored as received), the object's write and `markReady` run after the row
 * is inserted; a decode is bounded by the pixel limits, a scan by `MEDIA_SCANNER_TIMEOUT`, and a
 * storage request gives up after 30 s (a few minutes with the SDKs' retries): an hour is far more
 * than any ingest takes. It is also how long
 * an ingest cut short by a crash keeps its bytes counted against the owner's quota (plus up to one
 * sweep interval).
 */
export const INGEST_DEADLINE_SECONDS = 60 * 60;

export interface IngestResult {
  media: MediaObject;
  deduped: boolean;
  /** With `deferAcceptance`: announces the accepted ingest (once, however often it is called). */
  accept?: () => void;
}

/**
 * Stages the bytes (counted, hashed, size-limited), checks what they are, dedupes per owner and
 * stores them. Either a ready row and its object both exist afterwards, or neither does, or (after
 * a crash, or a failure whose clean-up failed too) a pending row that the retention sweep removes,
 * with any object at its key, once its deadline has passed: never an object that no row names.
 */
export class IngestMedia {
  constructor(
    private readonly repository: MediaRepository,
    private readonly storage: MediaStorage,
    private readonly staging: UploadStaging,
    private readonly inspector: ImageInspector,
    private readonly clock: Clock,
    private readonly events: MediaEvents,
    private readonly policy: MediaPolicy,
    private readonly quota: QuotaPolicy = new FixedQuotaPolicy(),
    private readonly scanner: ContentScanner = new NoContentScanner(),
  ) {}

  async execute(command: IngestCommand): Promise<IngestResult> {
    let ownerId: string | undefined;
    try {
      ownerId = resolveOwner(command.principal, command.userId);
      return await this.ingest(command, ownerId);
    } catch (error) {
      if (isDomainError(error)) {
        this.events.emit({ type: 'ingest.rejected', principal: command.principal, source: command.source, code: error.code, reason: rejectionReason(error), owner: ownerId });
      }
      throw error;
    }
  }

  private async ingest(command: IngestCommand, ownerId: string): Promise<IngestResult> {
    const staged = await this.staging.stage(command.body, { maxBytes: this.policy.maxBytes });
    let stored: StagedUpload | undefined;
    try {
      if (this.inspector.storesAsReceived) return await this.ingestAsReceived(command, ownerId, staged);

      // Bytes this owner already stored (as received, or as stored after re-encoding) were
      // inspected then: answer from the row without decoding them again.
      // A twin claimed for deletion meanwhile (retention) is not one: the bytes are stored anew.
      const known = await this.liveTwin(ownerId, staged.sha256);
      if (known) return this.accepted(command, known, true, staged.bytes);

      const inspected = await this.inspector.inspect(staged);
      stored = inspected.stored;
      const sniffed = inspected.facts.mimeType;
      this.noteMismatch(command, sniffed);

      const existing = stored === staged ? null : await this.liveTwin(ownerId, stored.sha256);
      if (existing) return this.accepted(command, existing, true, staged.bytes);

      await scanOrReject(this.scanner, stored, sniffed);

      // The pending row's insert enforces the quota, before any byte is written to storage. It
      // charges nothing for bytes this owner is storing at this moment (a twin's pending row): at
      // most one of them becomes ready, so a retry of an upload still in flight at the limit
      // dedupes, as it did when rows were inserted ready (and as a sequential one does).
      const pending = this.pendingRow(command, ownerId, staged, stored, sniffed);
      await this.repository.insert(pending, this.quota.limitsFor(ownerId));
      const result = await this.storeOrAbandon(pending, stored);
      return this.accepted(command, result.media, result.deduped, staged.bytes);
    } finally {
      if (stored && stored !== staged) await stored.dispose();
      await staged.dispose();
    }
  }

  /**
   * Bytes stored as received (no re-encoding): their hash and type are known before the decode,
   * so the dedupe lookup and the pending row go to the database as one statement (`insert` with
   * `unlessTwin`): a new upload costs one round trip less, and bytes the owner already has are
   * answered from their row without being decoded again, as in `ingest`. The pending row is then
   * in place while the bytes are checked: an upload the check (or the scan) refuses takes its row
   * with it (`abandon`), and the quota is enforced before the decode is paid for.
   */
  private async ingestAsReceived(command: IngestCommand, ownerId: string, staged: StagedUpload): Promise<IngestResult> {
    const sniffed = await this.inspector.sniff(staged);
    const limits = this.quota.limitsFor(ownerId);
    for (let attempt = 0; attempt < TWIN_ATTEMPTS; attempt++) {
      const pending = this.pendingRow(command, ownerId, staged, staged, sniffed);
      const inserted = await this.repository.insert(pending, limits, { unlessTwin: true });
      if (!inserted.inserted) {
        // A twin claimed for deletion meanwhile (retention) is not one: the next attempt stores
        // the bytes anew (the claim took the twin out of what the statement looks for).
        const twin = await keepTwinAlive(this.repository, inserted.existing, this.clock.now(), this.policy);
        if (twin) return this.accepted(command, twin, true, staged.bytes);
        continue;
      }
      try {
        const inspected = await this.inspector.inspect(staged);
        if (inspected.stored !== staged || inspected.facts.mimeType !== sniffed) {
          throw new Error('the image inspector changed the bytes or their type although it stores them as received');
        }
        this.noteMismatch(command, sniffed);
        await scanOrReject(this.scanner, staged, sniffed);
      } catch (error) {
        await this.abandon(pending, false).catch(() => undefined);
        throw error;
      }
      const result = await this.storeOrAbandon(pending, staged);
      return this.accepted(command, result.media, result.deduped, staged.bytes);
    }
    throw new Error(`ingest kept meeting twins of ${staged.sha256} that were being deleted`);
  }

  /**
   * The row an ingest writes before its bytes: a crash after it leaves a pending row whose deadline
   * passes, and the retention sweep then removes it with whatever object was written for it. It
   * charges the quota (one object, the stored bytes) as the insert of a ready row did; it is
   * served, resolved and deduped against by nothing until it is ready.
   */
  private pendingRow(command: IngestCommand, ownerId: string, staged: StagedUpload, stored: StagedUpload, mimeType: AllowedMimeType): MediaObject {
    const now = this.clock.now();
    return newPendingObject({
      id: newMediaId(now.getTime()),
      ownerId,
      storageProvider: this.storage.provider,
      mimeType,
      bytes: stored.bytes,
      sha256: stored.sha256,
      originalSha256: stored === staged ? null : staged.sha256,
      filename: sanitizeFilename(command.filename),
      now,
      uploadExpiresAt: new Date(now.getTime() + INGEST_DEADLINE_SECONDS * 1000),
    });
  }

  /** Tells when the client declared another type than the bytes have (they decide). */
  private noteMismatch(command: IngestCommand, sniffed: AllowedMimeType): void {
    const declared = normalizeMimeType(command.declaredMimeType);
    if (declared && declared !== sniffed) {
      this.events.emit({ type: 'ingest.mime_mismatch', principal: command.principal, source: command.source, declared, sniffed });
    }
  }

  /** The owner's ready object with these bytes, kept alive for another retention period. */
  private async liveTwin(ownerId: string, sha256: string): Promise<MediaObject | null> {
    const twin = await this.repository.findReadyByOwnerAndSha256(ownerId, sha256);
    return twin && keepTwinAlive(this.repository, twin, this.clock.now(), this.policy);
  }

  /**
   * Writes the object of a pending row, then makes the row ready. When a concurrent twin was made
   * ready first, the twin is kept alive and this upload's object and row go. A twin claimed for
   * deletion before it could be kept alive has left the dedupe index, so marking the row ready is
   * tried again. Any failure removes the object and the row; what a failure (or a crash) leaves
   * is the sweep's.
   */
  private async storeOrAbandon(pending: MediaObject, stored: StagedUpload): Promise<{ media: MediaObject; deduped: boolean }> {
    let written = false;
    try {
      await this.storage.put(pending.storageKey, stored.open(), {
        contentType: pending.mimeType,
        contentLength: pending.bytes,
        sha256: pending.sha256 ?? undefined,
        sourcePath: stored.path ?? undefined,
        sourceBuffer: stored.buffer ?? undefined,
      });
      written = true;
      for (let attempt = 0; attempt < TWIN_ATTEMPTS; attempt++) {
        const now = this.clock.now();
        // No limits: the pending row already counts these very bytes, so readiness adds nothing
        // to check, and costs one statement.
        const marked = await this.repository.markReady(
          pending,
          { bytes: pending.bytes, sha256: pending.sha256, mimeType: pending.mimeType, retentionUntil: retentionFrom(now, this.policy) },
          now,
        );
        if (marked.inserted) return { media: marked.media, deduped: false };
        const twin = await keepTwinAlive(this.repository, marked.existing, now, this.policy);
        if (twin) {
          // The upload is stored (as the twin) whether or not its own leftovers go now.
          await this.abandon(pending, true).catch(() => undefined);
          return { media: twin, deduped: true };
        }
      }
      throw new Error(`marking ${pending.id} ready kept meeting twins that were being deleted`);
    } catch (error) {
      await this.abandon(pending, written).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Removes an upload's row and object: the row is claimed first, so that nothing can make it
   * ready any more and, should removing the object fail, the sweep finishes the deletion. A row
   * that cannot be claimed (the database failed) is left as it is: still pending, the sweep removes
   * it and its object once its deadline has passed; made ready after all (its `markReady` committed
   * but the answer was lost), it keeps its object. A row already gone (deleted by the sweep after
   * its deadline) names nothing any more, so the object at its key is nobody's. After a failed put
   * nothing is at the key (the port's promise): removing it anyway is a courtesy whose failure
   * (the storage that refused the put is likely down) does not keep the row.
   */
  private async abandon(pending: MediaObject, written: boolean): Promise<void> {
    const claimed = await this.repository.claimForDeletion(pending.id, this.clock.now());
    try {
      await this.storage.delete(pending.storageKey);
    } catch (error) {
      if (written) throw error;
    }
    if (claimed) await this.repository.delete(pending.id);
  }

  private accepted(command: IngestCommand, media: MediaObject, deduped: boolean, receivedBytes: number): IngestResult {
    let announced = false;
    const accept = () => {
      if (announced) return;
      announced = true;
      this.events.emit({ type: 'ingest.accepted', principal: command.principal, source: command.source, media, deduped, receivedBytes });
    };
    if (!command.deferAcceptance) {
      accept();
      return { media, deduped };
    }
    return { media, deduped, accept };
  }
}

/**
 * Who owns an upload. A user's own subject always wins over a `user_id` in the body; a service or
 * admin acts for the user named by header or body (they must agree), or for itself.
 */
export function resolveOwner(principal: Principal, bodyUserId: string | undefined): string {
  const userId = bodyUserId?.trim();
  if (principal.kind === 'user') return principal.subject;
  // Given but blank is a caller's bug, not "no user" (which would make the upload the service's own).
  if (userId === '') throw new DomainError('invalid_request', `user_id must be ${USER_ID_RULE}`);
  const named = ownerFor(principal);
  if (named && userId && named !== userId) {
    throw new DomainError('invalid_request', 'user_id in the body does not match X-Jan-User-Id');
  }
  const owner = named ?? userId;
  if (owner) {
    if (!isUserId(owner)) throw new DomainError('invalid_request', `user_id must be ${USER_ID_RULE}`);
    return owner;
  }
  return principal.kind === 'service' ? `service:${principal.serviceId}` : `admin:${principal.adminId}`;
}

/** A client's filename as stored: no control characters, quotes or path separators, at most 255 characters. */
export function sanitizeFilename(filename: string | undefined): string | null {
  if (!filename) return null;
  // eslint-disable-next-line no-control-regex
  const cleaned = filename.replace(/[\u0000-\u001f\u007f"\\/]/g, '').trim().slice(0, 255);
  return cleaned || null;
}
