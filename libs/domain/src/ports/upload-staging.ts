import type { Readable } from 'node:stream';

/**
 * Bytes received from a client, counted and hashed on the way in. Small uploads stay in memory
 * (`buffer`); larger ones are spooled to a private file (`path`), so no step holds a large upload
 * in memory. Exactly one of `buffer` and `path` is set. `open()` may be called more than once.
 */
export interface StagedUpload {
  readonly bytes: number;
  /** Hex SHA-256 of the staged bytes. */
  readonly sha256: string;
  /** The first bytes (up to 4 KiB), for content sniffing. */
  readonly head: Buffer;
  /** The bytes, when the upload was small enough to be kept in memory; otherwise null. */
  readonly buffer: Buffer | null;
  /** A path to the bytes on local disk, when they were spooled there; otherwise null. */
  readonly path: string | null;
  open(): Readable;
  dispose(): Promise<void>;
}

/**
 * What an upload's bytes come from: a stream, or a `Buffer` the caller already holds whole (a
 * decoded data URL). A `Buffer` is handed over: staging may keep that very object, so the caller
 * must not change it afterwards.
 */
export type UploadSource = Readable | AsyncIterable<Uint8Array> | Buffer;

export abstract class UploadStaging {
  /**
   * Stages `source`, failing with `payload_too_large` as soon as more than `maxBytes` arrive
   * and with `empty_file` when nothing does. A failed stage leaves nothing behind.
   */
  abstract stage(source: UploadSource, options: { maxBytes: number }): Promise<StagedUpload>;
}
