import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { DomainError, UploadStaging, type StagedUpload, type UploadSource } from '@jan/domain';
import { removeStaleFiles } from '@jan/storage-local';

const HEAD_BYTES = 4096;
/** A spool file (`upload-<uuid>`). */
const SPOOL_NAME = /^upload-[0-9a-f-]{36}$/;

/** Uploads up to this size stay in memory: no temp file, and decoders read the buffer. */
export const DEFAULT_IN_MEMORY_MAX_BYTES = 1024 * 1024;

export interface TempFileUploadStagingOptions {
  /** Largest upload kept in memory; anything bigger is spooled to a file. 0 spools everything. */
  inMemoryMaxBytes?: number;
}

/**
 * Stages uploads as a spooled temporary file does: bytes are counted and hashed as they arrive and
 * kept in memory up to `inMemoryMaxBytes`; past that they move to a private temp file under
 * `directory` (`0600`, random name), so a large upload costs one chunk of memory whatever its
 * size. Small images (the common case) then cost no file-system calls at all before storage.
 * Temp files are removed on failure or `dispose()`.
 *
 * A `Buffer` source (a decoded data URL) is already whole: a small one is kept as it is, without
 * the defensive copy a stream's chunks get, the concatenation or the stream machinery. Under
 * concurrent data URL uploads that lowered the peak RSS by 40-90 MB (docs/performance.md).
 */
export class TempFileUploadStaging extends UploadStaging {
  private readonly inMemoryMaxBytes: number;

  constructor(
    private readonly directory: string,
    options: TempFileUploadStagingOptions = {},
  ) {
    super();
    this.inMemoryMaxBytes = options.inMemoryMaxBytes ?? DEFAULT_IN_MEMORY_MAX_BYTES;
  }

  /**
   * Removes spool files that a crash left behind (a process that died while an upload was staged
   * never disposed of it), last modified before `olderThan`; stops once `signal` is aborted.
   * Returns how many went.
   */
  removeStale(olderThan: Date, signal?: AbortSignal): Promise<number> {
    return removeStaleFiles(this.directory, SPOOL_NAME, olderThan, signal);
  }

  async stage(source: UploadSource, options: { maxBytes: number }): Promise<StagedUpload> {
    if (Buffer.isBuffer(source)) return this.stageWhole(source, options);
    // A stream that fails while the temp file is being created must not become an unhandled 'error'
    // event; the iterator below still sees the failure, because the stream stays errored.
    const ignore = () => undefined;
    const emitter = isEmitter(source) ? source : null;
    emitter?.on('error', ignore);
    try {
      return await this.spool(source, options);
    } finally {
      emitter?.off('error', ignore);
    }
  }

  private async stageWhole(data: Buffer, options: { maxBytes: number }): Promise<StagedUpload> {
    if (data.length > options.maxBytes) {
      throw new DomainError('payload_too_large', `upload exceeds ${options.maxBytes} bytes`, { max_bytes: options.maxBytes });
    }
    if (data.length === 0) throw new DomainError('empty_file', 'upload is empty');
    const sha256 = createHash('sha256').update(data).digest('hex');
    if (data.length <= this.inMemoryMaxBytes) return new InMemoryStagedUpload(data, sha256);
    const file = await SpoolFile.create(this.directory);
    try {
      await file.write(data);
      await file.close();
    } catch (error) {
      await file.discard();
      throw error;
    }
    return new TempFileStagedUpload(file.path, data.length, sha256, file.head());
  }

  private async spool(source: Readable | AsyncIterable<Uint8Array>, options: { maxBytes: number }): Promise<StagedUpload> {
    const hash = createHash('sha256');
    const held: Buffer[] = [];
    let file: SpoolFile | null = null;
    let bytes = 0;
    try {
      // for-await gives back-pressure for free: the next chunk is pulled only after this one is stored.
      for await (const raw of source as AsyncIterable<Uint8Array | string>) {
        const chunk = typeof raw === 'string' ? Buffer.from(raw) : Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
        bytes += chunk.length;
        if (bytes > options.maxBytes) {
          // Stop the sender now rather than draining a body we will refuse anyway.
          if (isDestroyable(source)) source.destroy();
          throw new DomainError('payload_too_large', `upload exceeds ${options.maxBytes} bytes`, { max_bytes: options.maxBytes });
        }
        hash.update(chunk);
        if (file) {
          await file.write(chunk);
        } else if (bytes <= this.inMemoryMaxBytes) {
          // Copied: the source may reuse its chunk buffers after handing them over.
          held.push(Buffer.from(chunk));
        } else {
          file = await SpoolFile.create(this.directory);
          for (const earlier of held.splice(0)) await file.write(earlier);
          await file.write(chunk);
        }
      }
      if (bytes === 0) throw new DomainError('empty_file', 'upload is empty');
      if (file) await file.close();
    } catch (error) {
      await file?.discard();
      throw error;
    }
    const sha256 = hash.digest('hex');
    if (file) return new TempFileStagedUpload(file.path, bytes, sha256, file.head());
    const buffer = held.length === 1 ? held[0]! : Buffer.concat(held, bytes);
    return new InMemoryStagedUpload(buffer, sha256);
  }
}

/** A private temp file being written; remembers the first bytes for sniffing. */
class SpoolFile {
  private readonly headBuffer = Buffer.alloc(HEAD_BYTES);
  private headLength = 0;

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
  ) {}

  static async create(directory: string): Promise<SpoolFile> {
    await mkdir(directory, { recursive: true, mode: 0o700 });
    const path = join(directory, `upload-${randomUUID()}`);
    return new SpoolFile(path, await open(path, 'wx', 0o600));
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.headLength < HEAD_BYTES) {
      const take = Math.min(HEAD_BYTES - this.headLength, chunk.length);
      chunk.copy(this.headBuffer, this.headLength, 0, take);
      this.headLength += take;
    }
    let offset = 0;
    while (offset < chunk.length) {
      const { bytesWritten } = await this.handle.write(chunk, offset, chunk.length - offset);
      offset += bytesWritten;
    }
  }

  head(): Buffer {
    return Buffer.from(this.headBuffer.subarray(0, this.headLength));
  }

  close(): Promise<void> {
    return this.handle.close();
  }

  async discard(): Promise<void> {
    await this.handle.close().catch(() => undefined);
    await rm(this.path, { force: true });
  }
}

class InMemoryStagedUpload implements StagedUpload {
  readonly path = null;
  readonly bytes: number;
  readonly head: Buffer;

  constructor(
    readonly buffer: Buffer,
    readonly sha256: string,
  ) {
    this.bytes = buffer.length;
    this.head = buffer.subarray(0, HEAD_BYTES);
  }

  open(): Readable {
    return Readable.from([this.buffer], { objectMode: false });
  }

  async dispose(): Promise<void> {}
}

class TempFileStagedUpload implements StagedUpload {
  readonly buffer = null;
  private disposed: Promise<void> | null = null;

  constructor(
    readonly path: string,
    readonly bytes: number,
    readonly sha256: string,
    readonly head: Buffer,
  ) {}

  open(): Readable {
    return createReadStream(this.path);
  }

  dispose(): Promise<void> {
    this.disposed ??= rm(this.path, { force: true });
    return this.disposed;
  }
}

function isEmitter(source: unknown): source is Readable {
  return typeof (source as { on?: unknown }).on === 'function' && typeof (source as { off?: unknown }).off === 'function';
}

function isDestroyable(source: unknown): source is { destroy(): void } {
  return typeof (source as { destroy?: unknown }).destroy === 'function';
}
