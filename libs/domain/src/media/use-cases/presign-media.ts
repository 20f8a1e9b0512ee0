import type { Principal } from '../../access/principal';
import { Clock } from '../../ports/clock';
import { MediaStorage, type SignedUrl } from '../../ports/media-storage';
import type { MediaObject } from '../media-object';
import type { MediaPolicy } from '../media-policy';
import { PresignCache } from '../presign-cache';
import { MediaAccess } from './media-access';
import type { PendingUploadCompleter } from './pending-upload-completer';

export interface PresignOptions {
  /** `attachment` asks the browser to download; default is inline display. */
  download?: boolean;
  /** A shorter or longer lifetime (admin reissue); defaults to the policy's TTL. */
  ttlSeconds?: number;
}

/** A signed read URL and how long it lives, as the answers report it (`expires_in`). */
export interface PresignedUrl extends SignedUrl {
  /**
   * A freshly signed URL: exactly the TTL it was signed for (the adapters put `expiresAt` on a
   * whole second, the signing second plus the TTL, as the URL itself states it). A cached one: the
   * whole seconds left until `expiresAt`, rounded up, so a cache hit within the signing second
   * still reads the TTL and `expiresAt` always lies within `expiresInSeconds` from now.
   */
  expiresInSeconds: number;
}

/** Short-lived read URLs, cached while more than half of their life remains. */
export class PresignMedia {
  constructor(
    private readonly access: MediaAccess,
    private readonly storage: MediaStorage,
    private readonly cache: PresignCache,
    private readonly clock: Clock,
    private readonly policy: Pick<MediaPolicy, 'presignTtlSeconds'>,
    /** Completes an old client's direct upload on its first presign; without it, pending stays 404. */
    private readonly completer?: PendingUploadCompleter,
  ) {}

  async presign(principal: Principal, rawId: string, options: PresignOptions = {}): Promise<{ media: MediaObject; signed: PresignedUrl }> {
    const media = await this.access.readable(principal, rawId, 'presign', { completer: this.completer });
    return { media, signed: await this.sign(media, options) };
  }

  /** Signs a URL for an object whose access was already checked. */
  async sign(media: MediaObject, options: PresignOptions = {}): Promise<PresignedUrl> {
    const disposition = options.download ? attachment(media) : 'inline';
    const ttl = options.ttlSeconds ?? this.policy.presignTtlSeconds;
    const cacheable = options.ttlSeconds === undefined;
    const variant = `url|${disposition}`;
    const now = this.clock.now();
    if (cacheable) {
      const hit = this.cache.get(media.storageKey, variant, now);
      if (hit) return { ...hit, expiresInSeconds: Math.max(0, Math.ceil((hit.expiresAt.getTime() - now.getTime()) / 1000)) };
    }
    const signed = await this.storage.signedReadUrl(media.storageKey, {
      expiresInSeconds: ttl,
      contentType: media.mimeType,
      contentDisposition: disposition,
    });
    if (cacheable) this.cache.set(media.storageKey, variant, signed, now);
    return { ...signed, expiresInSeconds: ttl };
  }
}

/** Other spellings of a stored extension that name the same type. */
const SAME_TYPE: Record<string, string[]> = { '.jpg': ['.jpeg'], '.tiff': ['.tif'] };

/**
 * `Content-Disposition: attachment` named after the client's filename, with the extension of the
 * type actually served appended when the name ends otherwise: a PNG uploaded as `invoice.html`
 * (or `setup.exe`) downloads as `invoice.html.png`, so a link to this host never saves a file the
 * victim's system would open as something other than an image.
 */
export function attachment(media: Pick<MediaObject, 'id' | 'storageKey' | 'filename'>): string {
  const ext = media.storageKey.slice(media.storageKey.lastIndexOf('.'));
  const name = media.filename ? withExtension(media.filename, ext) : `${media.id}${ext}`;
  const ascii = name.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeExtValue(name)}`;
}

function withExtension(filename: string, ext: string): string {
  const lower = filename.toLowerCase();
  return [ext, ...(SAME_TYPE[ext] ?? [])].some((spelling) => lower.endsWith(spelling)) ? filename : `${filename}${ext}`;
}

/**
 * RFC 8187's value-chars: encodeURIComponent leaves `'`, `(`, `)` and `*` as they are, which an
 * ext-value may not hold, and strict parsers then refuse the whole header.
 */
function encodeExtValue(name: string): string {
  return encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
