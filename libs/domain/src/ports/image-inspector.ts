import type { AllowedMimeType } from '../media/media-types';
import type { StagedUpload } from './upload-staging';

export interface ImageFacts {
  /** The type sniffed from the bytes; never the one the client declared. */
  mimeType: AllowedMimeType;
  width: number;
  height: number;
  frames: number;
}

export interface InspectedImage {
  facts: ImageFacts;
  /**
   * The bytes to store: the staged upload itself, or a re-encoded copy (metadata stripped or
   * normalized) that the caller must dispose of as well.
   */
  stored: StagedUpload;
}

/**
 * Decides what an upload really is. Throws `unsupported_media_type` for anything outside the
 * allow-list, `corrupt_image` when it does not decode and `image_too_large` for decompression bombs.
 * Only the bytes decide: it is never told the type the client declared (the use cases compare
 * that with the sniffed type themselves).
 */
export abstract class ImageInspector {
  abstract inspect(upload: StagedUpload): Promise<InspectedImage>;

  /**
   * Whether `inspect` always hands back the upload itself as the bytes to store (it never
   * re-encodes): then the stored bytes, their hash and the type `sniff` finds are known before
   * the decode, and an ingest can dedupe (and write its pending row) first.
   */
  abstract readonly storesAsReceived: boolean;

  /**
   * The type of the bytes from their signature alone, as `inspect` would find it, without
   * decoding anything: `unsupported_media_type` for anything outside the allow-list. `inspect`
   * still decides whether the image is whole and safe.
   */
  abstract sniff(upload: StagedUpload): Promise<AllowedMimeType>;
}
