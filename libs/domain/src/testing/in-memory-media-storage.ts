import { Readable } from 'node:stream';
import type { StorageProvider } from '../media/media-object';
import { mediaNotFound } from '../media/errors';
import {
  MediaStorage,
  ObjectExistsError,
  type ByteRange,
  type PutOptions,
  type SignedReadOptions,
  type SignedUpload,
  type SignedUploadOptions,
  type SignedUrl,
  type StoredObjectStream,
} from '../ports/media-storage';

/** Objects in a Map. Signed URLs are opaque `memory://` strings; `signCount` counts signatures. */
export class InMemoryMediaStorage extends MediaStorage {
  readonly provider: StorageProvider = 'local';
  readonly objects = new Map<string, { data: Buffer; contentType: string }>();
  signCount = 0;
  /** Set to make the next put fail after consuming the body. */
  failNextPut: Error | null = null;

  constructor(private readonly now: () => Date = () => new Date()) {
    super();
  }

  async put(key: string, body: Readable, options: PutOptions) {
    return this.write(key, body, options, false);
  }

  async putNew(key: string, body: Readable, options: PutOptions) {
    return this.write(key, body, options, true);
  }

  private async write(key: string, body: Readable, options: PutOptions, exclusive: boolean) {
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(Buffer.from(chunk as Uint8Array));
    if (this.failNextPut) {
      const error = this.failNextPut;
      this.failNextPut = null;
      throw error;
    }
    const data = Buffer.concat(chunks);
    if (exclusive && this.objects.has(key)) throw new ObjectExistsError(key);
    this.objects.set(key, { data, contentType: options.contentType });
    return { bytes: data.length };
  }

  async get(key: string, range?: ByteRange): Promise<StoredObjectStream> {
    const object = this.objects.get(key);
    if (!object) throw mediaNotFound();
    const data = range ? object.data.subarray(range.start, range.end === undefined ? undefined : range.end + 1) : object.data;
    return { body: Readable.from([data]), bytes: data.length, contentType: object.contentType };
  }

  async head(key: string) {
    const object = this.objects.get(key);
    return object ? { bytes: object.data.length, contentType: object.contentType } : null;
  }

  async delete(key: string) {
    this.objects.delete(key);
  }

  async signedReadUrl(key: string, options: SignedReadOptions): Promise<SignedUrl> {
    this.signCount++;
    // As every adapter does: the signing second plus the TTL, the expiry the URL itself states.
    const expiresAt = new Date(Math.floor(this.now().getTime() / 1000) * 1000 + options.expiresInSeconds * 1000);
    return { url: `memory://${key}?n=${this.signCount}&exp=${expiresAt.getTime()}`, expiresAt };
  }

  async signedUploadUrl(key: string, options: SignedUploadOptions & { method: 'PUT' | 'POST' }): Promise<SignedUpload> {
    this.signCount++;
    const expiresAt = new Date(this.now().getTime() + options.expiresInSeconds * 1000);
    return { method: options.method, url: `memory://${key}?upload`, headers: { 'content-type': options.contentType }, expiresAt };
  }

  async ping() {}
}
