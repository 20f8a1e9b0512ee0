import { performance } from 'node:perf_hooks';
import { parseMediaId, type MediaId } from '@jan/mediaid';
import { canRead, type Principal } from '../../access/principal';
import { Clock } from '../../ports/clock';
import { MediaEvents } from '../../ports/media-events';
import { MediaRepository } from '../../ports/media-repository';
import { MediaStorage } from '../../ports/media-storage';
import { DomainError, mediaNotFound } from '../errors';
import { isServable, type MediaObject } from '../media-object';
import type { MediaPolicy } from '../media-policy';
import type { PlaceholderScan } from '../placeholders';
import type { PendingUploadCompleter } from './pending-upload-completer';
import { PresignMedia } from './presign-media';

export type ResolveMode = 'url' | 'inline';

export interface ResolveOptions {
  mode?: ResolveMode;
  /** Leave placeholders that cannot be resolved as they are instead of failing with 404. */
  keepUnresolved?: boolean;
}

export interface ResolveTimings {
  lookupMs: number;
  signMs: number;
}

export interface ResolvedMedia {
  id: MediaId;
  url: string;
  expiresAt: Date | null;
}

/**
 * Swaps `data:<mime>;jan_<id>` placeholders in any JSON for URLs a provider can fetch (or inline
 * data URLs). One repository query per request, whatever the number of placeholders, when the
 * ids are ready; a pending direct upload the client never completed is completed on this first
 * use (`completer`), at the cost of `complete`'s own reads and writes for that id, once.
 */
export class ResolveMedia {
  constructor(
    private readonly repository: MediaRepository,
    private readonly storage: MediaStorage,
    private readonly presign: PresignMedia,
    private readonly events: MediaEvents,
    private readonly policy: Pick<MediaPolicy, 'inline'>,
    private readonly clock: Clock,
    private readonly completer?: PendingUploadCompleter,
  ) {}

  /**
   * The placeholders of a JSON text (`readJsonText(bytes).placeholders(span)`): one query for
   * their ids, then the text's own bytes with the URLs written in.
   */
  async resolveScan<T>(principal: Principal, scan: PlaceholderScan<T>, options: ResolveOptions = {}) {
    // The mode is refused up front, not only once the payload happens to hold a placeholder.
    this.checkMode(options);
    if (scan.ids.length === 0 && scan.malformed.length === 0) {
      return { payload: scan.replace(() => undefined), resolved: [] as ResolvedMedia[], unresolved: [] as string[], timings: { lookupMs: 0, signMs: 0 } };
    }
    // A placeholder-shaped id that is no id counts as not found, as in the ids form.
    if (scan.malformed.length && !options.keepUnresolved) {
      const { unresolved } = await this.lookup(principal, scan.ids);
      throw mediaNotFound([...scan.malformed, ...unresolved]);
    }
    const { resolved, unresolved, timings } = await this.resolve(principal, scan.ids, options, scan.counts);
    const urls = new Map(resolved.map((r) => [r.id, r.url]));
    return { payload: scan.replace((id) => urls.get(id)), resolved, unresolved: [...scan.malformed, ...unresolved], timings };
  }

  /** The `{"ids": [...]}` form. Malformed ids count as not found; each id is listed once, as in a payload. */
  async resolveIds(principal: Principal, rawIds: readonly unknown[], options: ResolveOptions = {}) {
    this.checkMode(options);
    const distinct = new Set<MediaId>();
    const bad = new Set<string>();
    for (const raw of rawIds) {
      const id = parseMediaId(raw);
      if (id) distinct.add(id);
      else bad.add(String(raw));
    }
    const ids = [...distinct];
    const malformed = [...bad];
    if (malformed.length && !options.keepUnresolved) {
      // The 404 lists every id that would not resolve, not only the malformed ones.
      const { unresolved } = await this.lookup(principal, ids);
      throw mediaNotFound([...malformed, ...unresolved]);
    }
    const result = await this.resolve(principal, ids, options);
    return { ...result, unresolved: [...malformed, ...result.unresolved] };
  }

  /** `counts`: how many copies of each id's URL the answer holds (once each when absent, as in the ids form). */
  private async resolve(principal: Principal, ids: MediaId[], options: ResolveOptions, counts?: ReadonlyMap<MediaId, number>) {
    const mode = options.mode ?? 'url';
    const { usable, unresolved, lookupMs } = await this.lookup(principal, ids);
    if (unresolved.length && !options.keepUnresolved) throw mediaNotFound(unresolved);

    const t1 = performance.now();
    const resolved = mode === 'inline' ? await this.inline(usable, counts) : await this.sign(usable);
    const signMs = performance.now() - t1;
    return { resolved, unresolved, timings: { lookupMs, signMs } satisfies ResolveTimings };
  }

  private checkMode(options: ResolveOptions): void {
    if (options.mode === 'inline' && !this.policy.inline.enabled) {
      throw new DomainError('invalid_request', 'inline resolve mode is disabled on this server (MEDIA_RESOLVE_INLINE)');
    }
  }

  /** One statement for all ids; what the principal may use, and what it may not (missing, someone else's, pending, past retention). */
  private async lookup(principal: Principal, ids: MediaId[]) {
    const t0 = performance.now();
    const rows = ids.length ? await this.repository.findByIds(ids) : [];
    const lookupMs = performance.now() - t0;

    const byId = new Map(rows.map((m) => [m.id, m]));
    const now = this.clock.now();
    const usable: MediaObject[] = [];
    const unresolved: string[] = [];
    const denied: string[] = [];
    const pending: MediaObject[] = [];
    for (const id of ids) {
      const media = byId.get(id);
      if (media && !canRead(principal, media)) denied.push(id);
      if (media && canRead(principal, media) && isServable(media, now)) usable.push(media);
      else if (media && canRead(principal, media) && media.status === 'pending' && !media.claimedAt && this.completer !== undefined) pending.push(media);
      else unresolved.push(id);
    }
    if (denied.length) this.events.emit({ type: 'access.denied', principal, action: 'resolve', mediaIds: denied });
    for (const media of pending) {
      const completed = await this.completer?.completeOnFirstUse(principal, media);
      // A twin that already held these bytes is resolved for the placeholder's own id.
      if (completed) usable.push({ ...completed, id: media.id });
      else unresolved.push(media.id);
    }
    return { usable, unresolved, lookupMs };
  }

  private sign(media: MediaObject[]): Promise<ResolvedMedia[]> {
    return Promise.all(
      media.map(async (m) => {
        const signed = await this.presign.sign(m);
        return { id: m.id, url: signed.url, expiresAt: signed.expiresAt };
      }),
    );
  }

  /**
   * The per-request cap bounds what the answer will hold: every occurrence of an id is a copy of
   * its data URL (a payload naming one image 60 times carries it 60 times), so the total is each
   * data URL's length times its occurrences, checked before anything is read from storage.
   */
  private async inline(media: MediaObject[], counts?: ReadonlyMap<MediaId, number>): Promise<ResolvedMedia[]> {
    const { maxImageBytes, maxRequestBytes } = this.policy.inline;
    const total = media.reduce((sum, m) => sum + inlineLength(m) * (counts?.get(m.id) ?? 1), 0);
    const tooBig = media.filter((m) => m.bytes > maxImageBytes).map((m) => m.id);
    if (tooBig.length || total > maxRequestBytes) {
      throw new DomainError('inline_too_large', 'images too large to inline; use url mode', {
        ids: tooBig,
        max_image_bytes: maxImageBytes,
        max_request_bytes: maxRequestBytes,
        // What the answer would have carried: says, next to `ids`, whether the request cap was hit.
        request_bytes: total,
      });
    }
    const out: ResolvedMedia[] = [];
    for (const m of media) {
      const object = await this.storage.get(m.storageKey);
      const chunks: Buffer[] = [];
      for await (const chunk of object.body) chunks.push(Buffer.from(chunk as Uint8Array));
      out.push({ id: m.id, url: `data:${m.mimeType};base64,${Buffer.concat(chunks).toString('base64')}`, expiresAt: null });
    }
    return out;
  }
}

/** The length of `data:<mime>;base64,<bytes>` for an object: what one inlined occurrence adds. */
function inlineLength(media: Pick<MediaObject, 'mimeType' | 'bytes'>): number {
  return 'data:;base64,'.length + media.mimeType.length + 4 * Math.ceil(media.bytes / 3);
}
