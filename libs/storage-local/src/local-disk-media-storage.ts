import { randomUUID } from 'node:crypto';
import { close, constants as fsConstants, type Stats, createReadStream, createWriteStream, fstat, fsync, open as openCallback, write } from 'node:fs';
import { promisify } from 'node:util';
import { copyFile, link, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  DomainError,
  MediaStorage,
  mediaNotFound,
  ObjectExistsError,
  type ByteRange,
  type PutOptions,
  type SignedReadOptions,
  type SignedUpload,
  type SignedUploadOptions,
  type SignedUrl,
  type StorageProvider,
  type StoredObjectStream,
} from '@jan/domain';
import { removeStaleFiles } from './stale-files';
import { UrlSigner, type SignatureCheck, type SigningKey } from './url-signer';

export interface LocalDiskMediaStorageOptions {
  /** Directory that holds `images/<id>.<ext>` (and direct uploads on their way, `uploads/<id>.<ext>`). */
  root: string;
  /** Base of the absolute URLs handed out (`MEDIA_PUBLIC_URL`). */
  publicUrl: string;
  /** First key signs, all verify. */
  signingKeys: readonly SigningKey[];
  /**
   * Flush every object, and the directory entry that names it, to the disk before `put` returns
   * (and the entry's removal before `delete` does). Default true: an upload the service has
   * acknowledged then survives a power cut or a kernel crash, as it does on S3 and GCS, and a
   * deleted object does not come back. A crash of the process alone loses nothing either way.
   */
  durable?: boolean;
  now?: () => Date;
}

const openFd = promisify(openCallback);
const fstatFd = promisify(fstat);
const closeFd = promisify(close);

/** Query parameters of a URL this storage signed. */
export interface SignedQuery {
  expires?: string;
  kid?: string;
  sig?: string;
  ct?: string;
  cd?: string;
  len?: string;
}

const KEY_PATTERN = /^(images|uploads)\/jan_[0-9a-z]{26}\.(jpg|png|webp|gif|bmp|tiff)$/;

/** Where `ping` writes its probe files: outside `images/` and `uploads/`, so no key reaches it. */
const PROBE_DIRECTORY = '.readiness';
const PROBE_BYTES = Buffer.from('jan-media readiness probe\n');
/** A write's temporary file (`<key>.<uuid>.partial`) in `images/` or `uploads/`. */
const PARTIAL_NAME = /^jan_[0-9a-z]{26}\.(jpg|png|webp|gif|bmp|tiff)\.[0-9a-f-]{36}\.partial$/;
const PROBE_NAME = /^[0-9a-f-]{36}\.probe$/;

/** Routes of the media API that serve signed local URLs. */
export const LOCAL_FILES_PATH = '/v1/files/';
export const LOCAL_UPLOADS_PATH = '/v1/uploads/';

/**
 * Objects as files under `root`. Writes go to a temporary file renamed into place, so a failed put
 * leaves nothing at the key. "Presigned" URLs point at this service itself and carry an expiry and
 * an HMAC signature over the key, method, content type and disposition.
 */
export class LocalDiskMediaStorage extends MediaStorage {
  readonly provider: StorageProvider = 'local';
  private readonly signer: UrlSigner;
  private readonly publicUrl: string;
  private readonly now: () => Date;
  private readonly durable: boolean;
  /** Directories already created, so a put costs no mkdir syscall after the first. */
  private readonly directories = new Set<string>();
  private readonly directorySyncs = new Map<string, DirectorySync>();

  constructor(private readonly options: LocalDiskMediaStorageOptions) {
    super();
    this.durable = options.durable ?? true;
    this.signer = new UrlSigner(options.signingKeys);
    this.publicUrl = options.publicUrl.replace(/\/+$/, '');
    this.now = options.now ?? (() => new Date());
  }

  async put(key: string, body: Readable, options: PutOptions): Promise<{ bytes: number }> {
    return this.writeOrRetry(key, body, options, false);
  }

  /**
   * `put` for a key that must not have an object yet (a signed upload URL, which is single-use, or
   * the object a direct upload's complete writes):
   * the finished file is linked into place, which fails when a file is already there, so of two
   * uploads racing on one key the first to finish wins and the later one gets `ObjectExistsError`
   * and leaves nothing behind. Nothing an upload writes ever replaces bytes already checked.
   */
  async putNew(key: string, body: Readable, options: PutOptions): Promise<{ bytes: number }> {
    return this.writeOrRetry(key, body, options, true);
  }

  /**
   * The directory removed behind our back (ENOENT) fails one write; bytes handed over whole (a
   * buffer or a staged file) are written again once into a new directory, as a stream cannot be.
   */
  private async writeOrRetry(key: string, body: Readable, options: PutOptions, exclusive: boolean): Promise<{ bytes: number }> {
    try {
      return await this.write(key, body, options, exclusive);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || !(options.sourceBuffer || options.sourcePath)) throw asStorageError(error);
      return this.write(key, body, options, exclusive).catch((again: unknown) => {
        throw asStorageError(again);
      });
    }
  }

  private async write(key: string, body: Readable, options: PutOptions, exclusive: boolean): Promise<{ bytes: number }> {
    const path = this.pathOf(key);
    const directory = dirname(path);
    if (!this.directories.has(directory)) {
      await mkdir(directory, { recursive: true });
      this.directories.add(directory);
    }
    const temporary = `${path}.${randomUUID()}.partial`;
    let renamed = false;
    try {
      let size: number;
      if (options.sourceBuffer) {
        // Bytes already in memory (a small staged upload): one write, no stream.
        body.destroy();
        await this.writeBuffer(temporary, options.sourceBuffer);
        size = options.sourceBuffer.length;
      } else if (options.sourcePath) {
        // A staged file on this machine: copy in the kernel (copy_file_range) rather than through JS.
        body.destroy();
        await copyFile(options.sourcePath, temporary, fsConstants.COPYFILE_EXCL);
        if (this.durable) await syncFile(temporary);
        size = (await stat(temporary)).size;
      } else {
        await pipeline(body, createWriteStream(temporary, { flags: 'wx', flush: this.durable }));
        size = (await stat(temporary)).size;
      }
      // The bytes are on disk before the name points at them, so a crash never leaves a name on a
      // partly written file; the directory sync then makes the name itself survive.
      if (exclusive) {
        await link(temporary, path).catch((error: NodeJS.ErrnoException) => {
          throw error.code === 'EEXIST' ? new ObjectExistsError(key) : error;
        });
        renamed = true;
        await rm(temporary);
      } else {
        await rename(temporary, path);
        renamed = true;
      }
      await this.syncDirectory(directory);
      return { bytes: size };
    } catch (error) {
      // A failed put leaves nothing at the key, even when only the final directory sync failed.
      await rm(temporary, { force: true });
      if (renamed) await rm(path, { force: true });
      // The directory may have been removed behind our back: create it again on the next put.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') this.directories.delete(directory);
      throw error;
    }
  }

  async get(key: string, range?: ByteRange): Promise<StoredObjectStream> {
    const path = this.pathOf(key);
    // Opened here, not when the stream first reads: a file deleted in between (a DELETE racing
    // this read) is a 404 now rather than a stream error once the answer has begun.
    // A plain descriptor, not a FileHandle: a FileHandle's stream reads through promises, which
    // cost the serve path about a tenth more CPU per request.
    let fd: number;
    try {
      fd = await openFd(path, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw mediaNotFound();
      throw asStorageError(error);
    }
    try {
      const info = await fstatFd(fd);
      if (!info.isFile()) throw mediaNotFound();
      const size = info.size;
      if (!range) return { body: createReadStream('', { fd }), bytes: size, contentType: null };
      const end = Math.min(range.end ?? size - 1, size - 1);
      if (range.start > end) throw new DomainError('invalid_request', 'range not satisfiable', { size });
      return { body: createReadStream('', { fd, start: range.start, end }), bytes: end - range.start + 1, contentType: null };
    } catch (error) {
      await closeFd(fd);
      throw asStorageError(error);
    }
  }

  async head(key: string) {
    const size = await sizeOf(this.pathOf(key));
    return size === null ? null : { bytes: size, contentType: null };
  }

  /**
   * The size of a stored object and a strong ETag for it, or null when there is none. A key is
   * written once (a new id for new bytes), so its size and modification time name its bytes, as
   * nginx's ETags do.
   */
  async validator(key: string): Promise<{ bytes: number; etag: string } | null> {
    const info = await statOf(this.pathOf(key));
    return info && { bytes: info.size, etag: `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"` };
  }

  async delete(key: string): Promise<void> {
    const path = this.pathOf(key);
    try {
      await rm(path, { force: true });
      await this.syncDirectory(dirname(path));
    } catch (error) {
      // As for put: a disk that fails is `storage_unavailable` (503), and the row stays for a retry.
      throw asStorageError(error);
    }
  }

  async signedReadUrl(key: string, options: SignedReadOptions): Promise<SignedUrl> {
    this.pathOf(key);
    const expiresAt = this.expiry(options.expiresInSeconds);
    const query: SignedQuery = { expires: String(expiresAt.getTime() / 1000), ct: options.contentType, cd: options.contentDisposition };
    const { kid, sig } = this.signer.sign(readFacts(key, query));
    return { url: this.url(LOCAL_FILES_PATH, key, { ...query, kid, sig }), expiresAt };
  }

  async signedUploadUrl(key: string, options: SignedUploadOptions & { method: 'PUT' | 'POST' }): Promise<SignedUpload> {
    this.pathOf(key);
    const expiresAt = this.expiry(options.expiresInSeconds);
    const query: SignedQuery = {
      expires: String(expiresAt.getTime() / 1000),
      ct: options.contentType,
      len: options.contentLength === undefined ? undefined : String(options.contentLength),
    };
    const { kid, sig } = this.signer.sign(uploadFacts(key, query));
    const headers: Record<string, string> = { 'content-type': options.contentType };
    return { method: 'PUT', url: this.url(LOCAL_UPLOADS_PATH, key, { ...query, kid, sig }), headers, expiresAt };
  }

  /** Checks a signed read URL's query for `key`. */
  verifyRead(key: string, query: SignedQuery): SignatureCheck {
    if (!KEY_PATTERN.test(key) || !singleValued(query)) return { ok: false, reason: 'invalid_signature' };
    return this.signer.verify(readFacts(key, query), query.kid, query.sig, Number(query.expires), this.now().getTime());
  }

  /** Checks a signed upload URL's query for `key`. */
  verifyUpload(key: string, query: SignedQuery): SignatureCheck {
    if (!KEY_PATTERN.test(key) || !singleValued(query)) return { ok: false, reason: 'invalid_signature' };
    return this.signer.verify(uploadFacts(key, query), query.kid, query.sig, Number(query.expires), this.now().getTime());
  }

  /**
   * A storage round trip for readiness: the objects' directory is there, and a small file can be
   * created, flushed to the disk and removed. A read-only remount or a full disk fails it (the
   * directory alone would still answer). The file has a name of its own, so concurrent probes
   * never meet, and sits in `.readiness/`, which no key names: it is never served, listed or
   * swept. A probe that fails after creating its file removes it.
   */
  async ping(): Promise<void> {
    await mkdir(join(this.options.root, 'images'), { recursive: true });
    const directory = join(this.options.root, PROBE_DIRECTORY);
    await mkdir(directory, { recursive: true });
    const path = join(directory, `${randomUUID()}.probe`);
    const handle = await open(path, 'wx');
    try {
      await handle.writeFile(PROBE_BYTES);
      await handle.sync();
    } finally {
      await handle.close().catch(() => undefined);
      await rm(path, { force: true });
    }
  }

  /**
   * Removes what writes cut short by a crash left behind: temporary files of puts
   * (`<key>.<uuid>.partial`) and readiness probes, last modified before `olderThan`. They never
   * name an object (a put renames or links its file into place only once it is whole), so only
   * disk space is at stake. Stops before the next file once `signal` is aborted. Returns how many
   * files went.
   */
  async removeStaleTemporaries(olderThan: Date, signal?: AbortSignal): Promise<number> {
    let removed = 0;
    for (const directory of ['images', 'uploads']) removed += await removeStaleFiles(join(this.options.root, directory), PARTIAL_NAME, olderThan, signal);
    removed += await removeStaleFiles(join(this.options.root, PROBE_DIRECTORY), PROBE_NAME, olderThan, signal);
    return removed;
  }

  /**
   * A new file holding `bytes`. Durable, it is opened with O_DSYNC, so the write itself returns
   * once the bytes are on the disk (what write + fdatasync do, in one call of the thread pool).
   * Plain callbacks rather than a FileHandle: every pool call hands work to another thread and
   * back, and on the 2 vCPUs measured here each hop cost more than the write (docs/performance.md).
   */
  private writeBuffer(path: string, bytes: Buffer): Promise<void> {
    const flags = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | (this.durable ? fsConstants.O_DSYNC : 0);
    return new Promise((resolve, reject) => {
      openCallback(path, flags, 0o666, (openError, fd) => {
        if (openError) return reject(openError);
        writeAll(fd, bytes, (writeError) => close(fd, (closeError) => (writeError || closeError ? reject(writeError ?? closeError) : resolve())));
      });
    });
  }

  private async syncDirectory(directory: string): Promise<void> {
    if (!this.durable) return;
    let sync = this.directorySyncs.get(directory);
    if (!sync) this.directorySyncs.set(directory, (sync = new DirectorySync(directory)));
    await sync.sync().catch((error: unknown) => {
      // The directory is gone (removed behind our back): nothing of ours is left in it to keep.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    });
  }

  private pathOf(key: string): string {
    if (!KEY_PATTERN.test(key)) throw new DomainError('invalid_request', 'invalid storage key');
    return join(this.options.root, key);
  }

  private expiry(seconds: number): Date {
    return new Date(Math.floor(this.now().getTime() / 1000 + seconds) * 1000);
  }

  private url(path: string, key: string, query: SignedQuery): string {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) if (value !== undefined) params.set(name, value);
    return `${this.publicUrl}${path}${key}?${params.toString()}`;
  }
}

/**
 * Every parameter given at most once. A repeated one arrives as an array, whose facts join back
 * into the signed text when a signed value held a comma (a filename in `cd`), so the signature
 * would pass while the reply carried each piece as its own header.
 */
function singleValued(query: SignedQuery): boolean {
  return Object.values(query).every((value: unknown) => value === undefined || typeof value === 'string');
}

function readFacts(key: string, q: SignedQuery): string[] {
  return ['GET', key, q.expires ?? '', q.ct ?? '', q.cd ?? ''];
}

function uploadFacts(key: string, q: SignedQuery): string[] {
  return ['PUT', key, q.expires ?? '', q.ct ?? '', q.len ?? ''];
}

/** Writes all of `bytes` at the start of `fd`, however few bytes each write takes. */
function writeAll(fd: number, bytes: Buffer, done: (error: NodeJS.ErrnoException | null) => void, offset = 0): void {
  write(fd, bytes, offset, bytes.length - offset, offset, (error, written) => {
    if (error) return done(error);
    if (offset + written >= bytes.length) return done(null);
    writeAll(fd, bytes, done, offset + written);
  });
}

async function syncFile(path: string): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/**
 * fsync of one directory, shared by concurrent callers as a database shares a commit: a call
 * waits for a sync that starts after it was made (so it covers the caller's rename or unlink), and
 * every call made while one sync runs joins the same next one: a caller waits for at most two
 * syncs, and a burst of concurrent puts shares a few instead of paying one each.
 */
class DirectorySync {
  private running: Promise<void> | null = null;
  private next: Promise<void> | null = null;

  constructor(private readonly directory: string) {}

  sync(): Promise<void> {
    if (!this.running) return this.start();
    this.next ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.next = null;
        return this.start();
      });
    return this.next;
  }

  private start(): Promise<void> {
    // Callbacks rather than a FileHandle, as in writeBuffer: fewer turns of the event loop per call.
    const run = new Promise<void>((resolve, reject) => {
      openCallback(this.directory, 'r', (openError, fd) => {
        if (openError) return reject(openError);
        fsync(fd, (syncError) => close(fd, (closeError) => (syncError || closeError ? reject(syncError ?? closeError) : resolve())));
      });
    });
    this.running = run;
    void run.then(
      () => this.clear(run),
      () => this.clear(run),
    );
    return run;
  }

  private clear(run: Promise<void>): void {
    if (this.running === run) this.running = null;
  }
}

async function sizeOf(path: string): Promise<number | null> {
  return (await statOf(path))?.size ?? null;
}

/** The file's stat, or null when no file is there. */
async function statOf(path: string): Promise<Stats | null> {
  try {
    const info = await stat(path);
    return info.isFile() ? info : null;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw asStorageError(error);
  }
}

/**
 * Every failure of the file system is `storage_unavailable`, a 503 the client may retry, never a
 * 500: a full, read-only or failing disk, a directory removed or replaced by a file, descriptors
 * running out, Node's own `ERR_FS_EISDIR` when `rm` meets a directory where an object should be,
 * and codes not seen yet. The cause (with its code and path) is kept for the logs; the answer says
 * what every backend says.
 */
function asStorageError(error: unknown): Error {
  // Ours: the caller's answer (an existing key on putNew), not a failure of the disk.
  if (error instanceof DomainError || error instanceof ObjectExistsError) return error;
  return new DomainError('storage_unavailable', 'object storage is unavailable', undefined, { cause: error });
}
