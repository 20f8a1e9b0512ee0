import type { Readable } from 'node:stream';

/**
 * Bytes received from a client, spooled while being counted and hashed so that no step holds an
 * upload in memory. `open()` may be called more than once.
 */
export interface StagedUpload {
  readonly bytes: number;
  /** Hex SHA-256 of the staged bytes. */
  readonly sha256: string;
  /** The first bytes (up to 4 KiB), for content sniffing. */
  readonly head: Buffer;
  /** A path to the bytes on local disk, for decoders that read files. */
  readonly path: string;
  open(): Readable;
  dispose(): Promise<void>;
}

export abstract class UploadStaging {
  /**
   * Spools `source`, failing with `payload_too_large` as soon as more than `maxBytes` arrive
   * and with `empty_file` when nothing does. A failed stage leaves nothing behind.
   */
  abstract stage(source: Readable | AsyncIterable<Uint8Array>, options: { maxBytes: number }): Promise<StagedUpload>;
}
