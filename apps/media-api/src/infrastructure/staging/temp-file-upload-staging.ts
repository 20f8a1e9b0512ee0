import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { DomainError, UploadStaging, type StagedUpload } from '@jan/domain';

const HEAD_BYTES = 4096;

/**
 * Spools uploads into private temp files under `directory`, counting and hashing on the way, so an
 * upload costs one chunk of memory whatever its size. Files are created `0600` with random names
 * and removed on failure or `dispose()`.
 */
export class TempFileUploadStaging extends UploadStaging {
  constructor(private readonly directory: string) {
    super();
  }

  async stage(source: Readable | AsyncIterable<Uint8Array>, options: { maxBytes: number }): Promise<StagedUpload> {
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

  private async spool(source: Readable | AsyncIterable<Uint8Array>, options: { maxBytes: number }): Promise<StagedUpload> {
    await mkdir(this.directory, { recursive: true, mode: 0o700 });
    const path = join(this.directory, `upload-${randomUUID()}`);
    const file = await open(path, 'wx', 0o600);
    const hash = createHash('sha256');
    const head = Buffer.alloc(HEAD_BYTES);
    let headLength = 0;
    let bytes = 0;
    try {
      // for-await gives back-pressure for free: the next chunk is pulled only after this one is on disk.
      for await (const raw of source as AsyncIterable<Uint8Array | string>) {
        const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
        bytes += chunk.length;
        if (bytes > options.maxBytes) {
          // Stop the sender now rather than draining a body we will refuse anyway.
          if (isDestroyable(source)) source.destroy();
          throw new DomainError('payload_too_large', `upload exceeds ${options.maxBytes} bytes`, { max_bytes: options.maxBytes });
        }
        if (headLength < HEAD_BYTES) {
          const take = Math.min(HEAD_BYTES - headLength, chunk.length);
          head.set(chunk.subarray(0, take), headLength);
          headLength += take;
        }
        hash.update(chunk);
        await writeFully(file, chunk);
      }
      if (bytes === 0) throw new DomainError('empty_file', 'upload is empty');
      await file.close();
    } catch (error) {
      await file.close().catch(() => undefined);
      await rm(path, { force: true });
      throw error;
    }
    return new TempFileStagedUpload(path, bytes, hash.digest('hex'), Buffer.from(head.subarray(0, headLength)));
  }
}

class TempFileStagedUpload implements StagedUpload {
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

async function writeFully(file: import('node:fs/promises').FileHandle, chunk: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < chunk.length) {
    const { bytesWritten } = await file.write(chunk, offset, chunk.length - offset);
    offset += bytesWritten;
  }
}

function isEmitter(source: unknown): source is Readable {
  return typeof (source as { on?: unknown }).on === 'function' && typeof (source as { off?: unknown }).off === 'function';
}

function isDestroyable(source: unknown): source is { destroy(): void } {
  return typeof (source as { destroy?: unknown }).destroy === 'function';
}
