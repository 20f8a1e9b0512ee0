import { createHash } from 'node:crypto';
import { newMediaId } from '@jan/mediaid';
import type { Principal } from '../../access/principal';
import { Clock } from '../../ports/clock';
import { ImageInspector } from '../../ports/image-inspector';
import { ContentScanner, NoContentScanner } from '../../ports/content-scanner';
import { MediaEvents } from '../../ports/media-events';
import { MediaRepository } from '../../ports/media-repository';
import { MediaStorage, ObjectExistsError, type PutOptions, type SignedUpload } from '../../ports/media-storage';
import { FixedQuotaPolicy, QuotaPolicy, type QuotaLimits } from '../../ports/quota-policy';
import { UploadStaging, type StagedUpload } from '../../ports/upload-staging';
import { DomainError, isDomainError, mediaNotFound, uploadTooLarge, type ErrorCode } from '../errors';
import { newPendingObject, uploadKeyFor, type MediaObject } from '../media-object';
import { retentionFrom, type MediaPolicy } from '../media-policy';
import { isAllowedMimeType, normalizeMimeType } from '../media-types';
import { rejectionReason, scanOrReject } from '../content-scan';
import { keepTwinAlive } from './dedupe-twin';
import { resolveOwner, sanitizeFilename, type IngestResult } from './ingest-media';
import { MediaAccess } from './media-access';
import type { PendingUploadCompleter } from './pending-upload-completer';

export interface PrepareUploadCommand {
  principal: Principal;
  mimeType: string;
  /** Exact size the client will send, bound into the upload signature where the backend can. */
  bytes?: number;
  /** Hex SHA-256 the client declares; `complete` refuses other bytes. */
  sha256?: string;
  method?: 'PUT' | 'POST';
  userId?: string;
  filename?: string;
}

export interface PreparedUpload {
  media: MediaObject;
  upload: SignedUpload;
  expiresInSeconds: number;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
/** markReady attempts when each ready twin it meets turns out to be claimed for deletion. */
const TWIN_ATTEMPTS = 3;

/**
 * Direct-to-bucket uploads: reserve an id (`pending`), hand out a signed upload URL, and verify
 * what arrived before the object becomes `ready`. While pending, `bytes` and `sha256` hold what the
 * client declared (0 / null when it declared nothing).
 */
/** Failures after which `complete` keeps the reservation and its bytes for the client's retry. */
const RETRYABLE: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['media_not_ready', 'storage_unavailable', 'database_unavailable', 'scanner_unavailable']);

export class DirectUpload implements PendingUploadCompleter {
  constructor(
    private readonly access: MediaAccess,
    private readonly repository: MediaRepository,
    private readonly storage: MediaStorage,
    private readonly staging: UploadStaging,
    private readonly inspector: ImageInspector,
    private readonly clock: Clock,
    private readonly events: MediaEvents,
    private readonly policy: MediaPolicy & { uploadTtlSeconds: number },
    private readonly quota: QuotaPolicy = new FixedQuotaPolicy(),
    private readonly scanner: ContentScanner = new NoContentScanner(),
  ) {}

  /** A reservation counts as one object (and its declared bytes) towards the owner's quota. */
  async prepare(command: PrepareUploadCommand): Promise<PreparedUpload> {
    let ownerId: string | undefined;
    try {
      ownerId = resolveOwner(command.principal, command.userId);
      return await this.reserve(command, ownerId);
    } catch (error) {
      if (isDomainError(error)) this.events.emit({ type: 'ingest.rejected', principal: command.principal, source: 'direct_upload', code: error.code, owner: ownerId });
      throw error;
    }
  }

  private async reserve(command: PrepareUploadCommand, ownerId: string): Promise<PreparedUpload> {
    const mimeType = normalizeMimeType(command.mimeType);
    if (!mimeType || !isAllowedMimeType(mimeType)) {
      throw new DomainError('unsupported_media_type', 'mime_type must be one of image/jpeg, image/png, image/webp, image/gif, image/bmp, image/tiff');
    }
    if (command.bytes !== undefined) {
      if (!Number.isInteger(command.bytes) || command.bytes < 1) throw new DomainError('invalid_request', 'bytes must be a positive integer');
      if (command.bytes > this.policy.maxBytes) {
        throw new DomainError('payload_too_large', 'declared size exceeds the size limit', { max_bytes: this.policy.maxBytes });
      }
    }
    const sha256 = command.sha256?.toLowerCase();
    if (sha256 !== undefined && !SHA256_HEX.test(sha256)) throw new DomainError('invalid_request', 'sha256 must be 64 hex characters');

    const now = this.clock.now();
    const id = newMediaId(now.getTime());
    const ttl = this.policy.uploadTtlSeconds;
    const media = newPendingObject({
      id,
      ownerId,
      storageProvider: this.storage.provider,
      mimeType,
      bytes: command.bytes ?? 0,
      sha256: sha256 ?? null,
      originalSha256: null,
      filename: sanitizeFilename(command.filename),
      now,
      uploadExpiresAt: new Date(now.getTime() + ttl * 1000),
    });
    await this.repository.insert(media, this.quota.limitsFor(ownerId));
    const upload = await this.storage.signedUploadUrl(uploadKeyFor(media.storageKey), {
      method: command.method ?? 'PUT',
      contentType: mimeType,
      expiresInSeconds: ttl,
      contentLength: command.bytes,
      maxBytes: this.policy.maxBytes,
      checksumSha256Base64: sha256 ? Buffer.from(sha256, 'hex').toString('base64') : undefined,
    });
    return { media, upload, expiresInSeconds: ttl };
  }

  /** The pending reservation behind a signed upload URL, if it can still receive bytes. */
  async reservationFor(storageKey: string): Promise<MediaObject | null> {
    const media = await this.rowFor(storageKey, false);
    return media && this.isOpen(media) ? media : null;
  }

  /**
   * Whether bytes just written at a reservation's key (by an upload URL, which writes a key once)
   * belong there: its row is still open for them, or already ready (then `complete` checked these
   * very bytes). When the row is gone, or closed without them (discarded, expired), nothing will
   * ever point at them: the caller removes them. Reads the primary, not a replica that may lag.
   */
  async keepsUpload(uploadKey: string): Promise<boolean> {
    const media = await this.rowFor(uploadKey, true);
    if (!media) return false;
    // At the object's own key (a reservation from before upload keys): a ready row's checked bytes.
    if (uploadKey === media.storageKey) return media.status === 'ready' || this.isOpen(media);
    // At the upload key: only an open reservation still needs them (complete copies what it checked).
    return this.isOpen(media);
  }

  /** The row behind an upload key (`uploads/<id>.<ext>`, or the object's own key for older reservations). */
  private async rowFor(key: string, fresh: boolean): Promise<MediaObject | null> {
    const match = /^(?:uploads|images)\/(jan_[0-9a-z]{26})\./.exec(key);
    if (!match) return null;
    const media = await this.repository.findById(match[1] as MediaObject['id'], { fresh });
    return media && (uploadKeyFor(media.storageKey) === key || media.storageKey === key) ? media : null;
  }

  private isOpen(media: MediaObject): boolean {
    // The marker, not only the clocks: a claimer's clock may run ahead of this replica's.
    return media.status === 'pending' && !media.claimedAt && !(media.uploadExpiresAt && media.uploadExpiresAt <= this.clock.now());
  }

  /**
   * `complete` run by a read path for a client that never calls it. Only an open reservation with
   * bytes at its upload key qualifies: an ingest's pending row (whose object is written at its own
   * key, never at an upload key) and a reservation still waiting for its upload are left alone,
   * with no row or object touched. Any failure of `complete` answers null, having done what
   * `complete` does (a mismatch discards the reservation, a retryable failure keeps it); an
   * overlapping complete that is still storing the upload (`media_not_ready`) gets one re-read.
   */
  async completeOnFirstUse(principal: Principal, media: MediaObject): Promise<MediaObject | null> {
    if (!this.isOpen(media)) return null;
    try {
      if (!(await this.storage.head(uploadKeyFor(media.storageKey)))) return null;
      return (await this.completeAs(principal, media.id, true)).media;
    } catch (error) {
      if (!isDomainError(error, 'media_not_ready')) return null;
      const current = await this.repository.findById(media.id, { fresh: true }).catch(() => null);
      return current?.status === 'ready' && !current.claimedAt ? current : null;
    }
  }

  /**
   * Verifies the uploaded object: present, within limits, the declared size and checksum, an
   * allowed type equal to the reserved one, and an image that decodes. Any failure removes the
   * bytes and the reservation and answers the same codes as the other ingest paths.
   */
  async complete(principal: Principal, rawId: string): Promise<IngestResult> {
    return this.completeAs(principal, rawId, false);
  }

  /**
   * `complete`, or its first-use form (`firstUse`): there, bytes the owner already has do not
   * dedupe the reservation away, since its old client will go on using the reservation's id; the
   * reservation becomes a ready object of its own beside its twin (`markReady`'s `besideTwin`).
   */
  private async completeAs(principal: Principal, rawId: string, firstUse: boolean): Promise<IngestResult> {
    const media = await this.access.readable(principal, rawId, 'complete', { allowPending: true });
    if (media.status === 'ready') return { media, deduped: false };
    try {
      return await this.verify(principal, media, firstUse);
    } catch (error) {
      // Keep the upload when trying again can succeed: nothing uploaded yet, or a dependency
      // (storage, database, scanner) down for a moment. Anything else is the upload's fault and
      // discards it; a cleanup that fails leaves the closed row to the retention sweep and must
      // not hide the rejection from the client.
      const keep = !isDomainError(error) || RETRYABLE.has(error.code);
      if (!keep) await this.discard(media).catch(() => undefined);
      if (isDomainError(error)) {
        this.events.emit({ type: 'ingest.rejected', principal, source: 'direct_upload', code: error.code, mediaId: media.id, reason: rejectionReason(error), owner: media.ownerId });
      }
      throw error;
    }
  }

  private async verify(principal: Principal, media: MediaObject, firstUse: boolean): Promise<IngestResult> {
    if (media.uploadExpiresAt && media.uploadExpiresAt <= this.clock.now()) {
      throw new DomainError('upload_expired', 'the upload reservation has expired; prepare a new one');
    }
    // Reservations made before uploads had keys of their own received their bytes at the object's key.
    const uploadKey = uploadKeyFor(media.storageKey);
    let sourceKey = uploadKey;
    let head = await this.storage.head(uploadKey);
    if (!head) {
      sourceKey = media.storageKey;
      head = await this.storage.head(media.storageKey);
    }
    if (!head) throw new DomainError('media_not_ready', 'nothing has been uploaded for this id yet');
    if (head.bytes > this.policy.maxBytes) throw uploadTooLarge(this.policy.maxBytes);
    if (head.bytes === 0) throw new DomainError('empty_file', 'upload is empty');
    if (media.bytes > 0 && head.bytes !== media.bytes) {
      throw new DomainError('size_mismatch', 'uploaded size differs from the declared size', { declared_bytes: media.bytes, received_bytes: head.bytes });
    }

    const object = await this.storage.get(sourceKey);
    const staged = await this.staging.stage(object.body, { maxBytes: this.policy.maxBytes });
    let stored: StagedUpload | undefined;
    try {
      if (media.sha256 && staged.sha256 !== media.sha256) throw new DomainError('checksum_mismatch', 'uploaded bytes do not match the declared sha256');
      const inspected = await this.inspector.inspect(staged);
      stored = inspected.stored;
      if (inspected.facts.mimeType !== media.mimeType) {
        throw new DomainError('type_mismatch', `uploaded bytes are ${inspected.facts.mimeType}, reserved as ${media.mimeType}`);
      }
      await scanOrReject(this.scanner, stored, media.mimeType);
      // The object is written from the bytes checked here, never copied from the upload key,
      // which a second upload on the same URL could have replaced in the meantime.
      const options: PutOptions = {
        contentType: media.mimeType,
        contentLength: stored.bytes,
        sha256: stored.sha256,
        sourcePath: stored.path ?? undefined,
        sourceBuffer: stored.buffer ?? undefined,
      };
      if (sourceKey === media.storageKey) {
        // A reservation from before upload keys: its upload sits at the object's key, and the
        // checked bytes replace whatever is there.
        await this.storage.put(media.storageKey, stored.open(), options);
      } else {
        // Only if absent: two overlapping completes may each have checked different bytes (the
        // client uploaded again between them); the first object written stays, and no later
        // complete replaces it with bytes that do not match the row the first one marks ready.
        try {
          await this.storage.putNew(media.storageKey, stored.open(), options);
        } catch (error) {
          if (!(error instanceof ObjectExistsError)) throw error;
          const settled = await this.afterLostWrite(media, stored.sha256, stored.bytes);
          if (settled) return settled;
        }
      }
      let result: IngestResult | null = null;
      try {
        // A twin claimed for deletion before it could be kept alive has left the dedupe index:
        // marking this row ready is tried again.
        for (let attempt = 0; attempt < TWIN_ATTEMPTS && !result; attempt++) {
          const now = this.clock.now();
          const facts = { bytes: stored.bytes, sha256: stored.sha256, mimeType: media.mimeType, retentionUntil: retentionFrom(now, this.policy) };
          const limits = this.quota.limitsFor(media.ownerId);
          const marked = await this.repository.markReady(media, facts, now, limits);
          const own = !marked.inserted && firstUse ? await this.readyBesideTwin(media, facts, now, limits) : null;
          if (marked.inserted) result = { media: marked.media, deduped: false };
          else if (own) result = { media: own, deduped: false };
          else {
            const twin = await keepTwinAlive(this.repository, marked.existing, now, this.policy);
            if (twin) result = { media: twin, deduped: true };
          }
        }
        if (!result) throw new Error(`marking ${media.id} ready kept meeting twins that were being deleted`);
      } catch (error) {
        // The object at the key goes only once the row can never become ready with it: the id
        // was deleted, or claimed for deletion (whose deleter may have removed the object before
        // this complete wrote it), meanwhile. Otherwise the row is still pending, or ready after
        // all, and removing the object could take it from a ready row: another complete of the
        // same id may have found it at the key and made the row ready with it, or this
        // `markReady` may have committed with its answer lost. While the row names the object,
        // something else settles it: `complete` discards the reservation (and the object, only
        // while still pending) when the failure is the upload's fault (the quota refused it), and
        // a retry after a failure of the database adopts the object it finds (`afterLostWrite`);
        // the retention sweep removes both at the upload's deadline if nothing does.
        if (isDomainError(error, 'media_not_found')) await this.storage.delete(media.storageKey).catch(() => undefined);
        throw error;
      }
      if (result.deduped) await this.discard(media);
      else await this.storage.delete(uploadKey).catch(() => undefined);
      this.events.emit({ type: 'ingest.accepted', principal, source: 'direct_upload', media: result.media, deduped: result.deduped, receivedBytes: staged.bytes });
      return result;
    } finally {
      if (stored && stored !== staged) await stored.dispose();
      await staged.dispose();
    }
  }

  /**
   * First use of a reservation whose bytes the owner already has: the reservation, whose id the
   * old client keeps (in its chat history), becomes a ready object of its own with the copy this
   * complete has just written at its key, beside the twin and outside the dedupe index. It is
   * charged as the object it is: it must fit whole (one object, its bytes) beside the owner's
   * other objects, since a reservation that declared its twin's hash may have been let past the
   * quotas at prepare. When it does not fit, null: the caller answers with the twin and discards
   * the reservation, as `complete` does.
   */
  private async readyBesideTwin(
    media: MediaObject,
    facts: Pick<MediaObject, 'bytes' | 'sha256' | 'mimeType' | 'retentionUntil'>,
    now: Date,
    limits: QuotaLimits,
  ): Promise<MediaObject | null> {
    try {
      const marked = await this.repository.markReady(media, facts, now, limits, { besideTwin: true });
      return marked.inserted ? marked.media : null;
    } catch (error) {
      if (isDomainError(error, 'quota_exceeded')) return null;
      throw error;
    }
  }

  /**
   * `complete`'s write found an object at the key already: another complete of the same id
   * wrote it first (or this one's earlier attempt did, and then failed to mark the row ready or
   * to remove it). Answers what a complete that finds the row made ready by another one answers:
   * that row. While the row is still pending, an object holding exactly the bytes checked here is
   * taken as written (null: the caller marks the row ready with the same facts). Different
   * bytes are the other complete's, which marks the row ready with their hash: until it has,
   * `media_not_ready`, which keeps the reservation, and the client's retry gets the ready row.
   */
  private async afterLostWrite(media: MediaObject, sha256: string, bytes: number): Promise<IngestResult | null> {
    const current = await this.currentRow(media);
    if (current.status === 'ready') return { media: current, deduped: false };
    if (await this.holds(media.storageKey, sha256, bytes)) return null;
    const after = await this.currentRow(media);
    if (after.status === 'ready') return { media: after, deduped: false };
    throw new DomainError('media_not_ready', 'another complete of this upload is storing it; retry to get its answer');
  }

  /** The row as the primary has it; gone or claimed for deletion is `media_not_found`, as `markReady` answers. */
  private async currentRow(media: MediaObject): Promise<MediaObject> {
    const current = await this.repository.findById(media.id, { fresh: true });
    if (!current || current.claimedAt) throw mediaNotFound([media.id]);
    return current;
  }

  /** Whether the object at `key` holds exactly these bytes (false when it is gone meanwhile). */
  private async holds(key: string, sha256: string, bytes: number): Promise<boolean> {
    const object = await this.storage.get(key).catch((error: unknown) => {
      if (isDomainError(error, 'media_not_found')) return null;
      throw error;
    });
    if (!object) return false;
    if (object.bytes !== bytes) {
      object.body.destroy();
      return false;
    }
    const hash = createHash('sha256');
    for await (const chunk of object.body) hash.update(chunk as Uint8Array);
    return hash.digest('hex') === sha256;
  }

  /**
   * Removes a reservation's bytes and row. Its upload window closes first, which claims the row
   * for this deletion: an upload still in flight on the same URL (the local backend's) then finds
   * no open reservation when it lands and removes what it wrote, rather than leaving bytes that
   * no row points at, and a concurrent complete of the same id can no longer make it ready (it
   * answers media_not_found). If a step fails, the closed row stays for the retention sweep,
   * which removes both. A row that is no longer pending (another complete of the same id made it
   * ready) is left alone, with its object; one that another deleter claimed first is theirs.
   */
  private async discard(media: MediaObject): Promise<void> {
    // Not ours to remove: made ready by a concurrent complete, claimed by another deleter (an
    // owner's DELETE, the sweep), or gone.
    if (!(await this.repository.closeUpload(media.id, this.clock.now()))) return;
    await this.storage.delete(uploadKeyFor(media.storageKey));
    await this.storage.delete(media.storageKey);
    await this.repository.delete(media.id);
  }
}
