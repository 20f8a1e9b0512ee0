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
}
