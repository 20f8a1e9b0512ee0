import type { Metadata, Sharp, SharpOptions } from 'sharp';
import { DomainError, ImageInspector, isDomainError, type AllowedMimeType, type ImageFacts, type InspectedImage, type StagedUpload, UploadStaging } from '@jan/domain';
import { readBmpHeader } from './bmp-header';
import { jpegSize, pngSize, webpSize, type ImageSize } from './image-size';
import { checkStructure, looksLikeText } from './polyglot-check';
import { plainPngDecodes } from './png-check';

export type ReencodeMode = 'off' | 'strip' | 'normalize';

export interface SharpImageInspectorOptions {
  /** Where re-encoded copies are spooled (counted and hashed like uploads). */
  staging: UploadStaging;
  /** Decoded pixels across all frames/pages; the decompression-bomb cap. */
  maxPixels?: number;
  /** Longest side of one frame. */
  maxDimension?: number;
  maxFrames?: number;
  reencode?: ReencodeMode;
  /**
   * A re-encoded copy larger than this is refused as `image_too_large`. The app passes the upload
   * limit (`MEDIA_MAX_BYTES`): a stored copy above it could not be uploaded again to dedupe.
   */
  maxOutputBytes?: number;
  /** Inspections decoding at once; the rest wait, so peak memory stays bounded. */
  maxConcurrent?: number;
}

/** What file-type reports for the allowed families (APNG is a PNG to every decoder here). */
const SNIFFED: Record<string, AllowedMimeType> = {
  'image/jpeg': 'image/jpeg',
  'image/png': 'image/png',
  'image/apng': 'image/png',
  'image/webp': 'image/webp',
  'image/gif': 'image/gif',
  'image/bmp': 'image/bmp',
  'image/tiff': 'image/tiff',
};

/** Single-frame images up to this many pixels are decoded whole rather than through a shrink. */
const RAW_DECODE_MAX_PIXELS = 256 * 1024;

/** Formats whose size is read from the first bytes rather than through a sharp call (image-size.ts). */
const SIZE_FROM_BYTES: Partial<Record<AllowedMimeType, (head: Buffer) => ImageSize | null>> = {
  'image/png': pngSize,
  'image/jpeg': jpegSize,
  'image/webp': webpSize,
};

const ANIMATED: ReadonlySet<AllowedMimeType> = new Set(['image/gif', 'image/webp', 'image/tiff']);

interface Header {
  width: number;
  height: number;
  frames: number;
  /** Decoded pixels across every frame or page. */
  pixels: number;
  /** Multi-page TIFFs whose pages differ in size cannot be loaded as one strip of frames. */
  uniformPages: boolean;
  depth?: string;
}

type SharpFactory = typeof import('sharp');
let sharpModule: Promise<SharpFactory> | undefined;
// sharp and libvips (~10 MB resident) load on the first inspection, not at boot.
const loadSharp = () =>
  (sharpModule ??= import('sharp').then((module) => {
    const factory = ((module as unknown as { default?: SharpFactory }).default ?? module) as SharpFactory;
    // libvips' operation cache keeps decoded images around for reuse we never make.
    factory.cache(false);
    return factory;
  }));

let fileTypeModule: Promise<typeof import('file-type')> | undefined;
// file-type is ESM-only; a dynamic import keeps this CommonJS build loadable on any Node it supports.
const loadFileType = () => (fileTypeModule ??= import('file-type'));

/**
 * Decides what an upload is from its bytes (file-type), refuses polyglots, reads the header before
 * any full decode (pixel, dimension and frame caps; the size of a PNG, JPEG or still WebP straight
 * from its first bytes, any other through libvips), proves the image decodes completely (sharp,
 * `failOn: 'error'`; a plain PNG in memory through png-check.ts, which vouches only for what sharp
 * decodes), and optionally re-encodes it.
 *
 * Re-encoding: `strip` re-encodes in the same format without EXIF/XMP/IPTC/comments, baking the
 * EXIF orientation into the pixels (viewers and model providers that ignore the tag then still see
 * the photo upright) and keeping the ICC profile so colours do not shift; `normalize` also converts
 * to 8-bit sRGB with fixed encoder settings. Animation and pages are kept. BMP is never re-encoded
 * (sharp cannot write it and the format has no EXIF/XMP to leak).
 *
 * Dedupe: the use case keys on the stored (re-encoded) sha256 and records the original's as
 * `originalSha256`; the repository matches either. Re-encoding is deterministic for a given
 * libvips, so the same original maps to the same stored bytes, and a re-upload of a stored copy
 * dedupes too.
 */
export class SharpImageInspector extends ImageInspector {
  private sharp: SharpFactory | undefined;
  private readonly staging: UploadStaging;
  private readonly maxPixels: number;
  private readonly maxDimension: number;
  private readonly maxFrames: number;
  private readonly reencode: ReencodeMode;
  private readonly maxOutputBytes: number;
  private readonly slots: Semaphore;

  constructor(options: SharpImageInspectorOptions) {
    super();
    this.staging = options.staging;
    this.maxPixels = options.maxPixels ?? 50_000_000;
    this.maxDimension = options.maxDimension ?? 20_000;
    this.maxFrames = options.maxFrames ?? 1000;
    this.reencode = options.reencode ?? 'off';
    this.maxOutputBytes = options.maxOutputBytes ?? 64 * 1024 * 1024;
    this.slots = new Semaphore(options.maxConcurrent ?? 4);
  }

  get storesAsReceived(): boolean {
    return this.reencode === 'off';
  }

  async inspect(upload: StagedUpload): Promise<InspectedImage> {
    return this.slots.run(() => this.inspectNow(upload));
  }

  private async inspectNow(upload: StagedUpload): Promise<InspectedImage> {
    this.sharp ??= await loadSharp();
    const mimeType = await this.sniff(upload);
    const structure = await checkStructure(upload, mimeType);
    if (structure.polyglot) throw new DomainError('unsupported_media_type', 'the file is an image and something else at once', { reason: structure.polyglot });
    if (mimeType === 'image/bmp') return { facts: this.checkBmp(upload), stored: upload };

    let header = this.headerFromBytes(upload, mimeType) ?? (await this.readHeader(upload, mimeType));
    if (mimeType === 'image/gif') header = withGifScreen(header, upload.head);
    this.checkLimits(header);
    if (structure.truncated) throw this.decodeFailure(upload, new Error('the container ends inside a block'));
    await this.decodeFully(upload, mimeType, header);
    const facts: ImageFacts = { mimeType, width: header.width, height: header.height, frames: header.frames };
    if (this.reencode === 'off') return { facts, stored: upload };
    return this.reencodeCopy(upload, facts, header);
  }

  async sniff(upload: StagedUpload): Promise<AllowedMimeType> {
    const { fileTypeFromBuffer, fileTypeFromFile } = await loadFileType();
    const found = upload.buffer ? await fileTypeFromBuffer(upload.buffer) : await fileTypeFromFile(upload.path!);
    const mime = found && SNIFFED[found.mime];
    if (!mime) {
      throw new DomainError('unsupported_media_type', 'only JPEG, PNG, WebP, GIF, BMP and TIFF images are accepted', found ? { detected: found.mime } : undefined);
    }
    return mime;
  }

  private checkBmp(upload: StagedUpload): ImageFacts {
    const verdict = readBmpHeader(upload.head);
    if (!verdict.ok) {
      throw new DomainError(verdict.reason === 'unsupported' ? 'unsupported_media_type' : 'corrupt_image', verdict.message);
    }
    this.checkLimits({ width: verdict.width, height: verdict.height, frames: 1, pixels: verdict.width * verdict.height, uniformPages: true });
    if (verdict.end > upload.bytes) throw new DomainError('corrupt_image', 'the BMP is truncated');
    // A few padding bytes are common; anything more after the pixels (or profile) is a payload.
    if (upload.bytes - verdict.end > 4) {
      throw new DomainError('unsupported_media_type', 'the file is an image and something else at once', { reason: 'trailing_data' });
    }
    return { mimeType: 'image/bmp', width: verdict.width, height: verdict.height, frames: 1 };
  }

  /**
   * PNG, JPEG and still WebP sizes read from the bytes already in hand (image-size.ts), which spares a
   * sharp call per upload: distinct PNG ingest went from 367–376 to 416–479 uploads/s. Re-encoding
   * needs libvips' full header (bit depth), so it always asks libvips.
   */
  private headerFromBytes(upload: StagedUpload, mimeType: AllowedMimeType): Header | null {
    if (this.reencode !== 'off') return null;
    const size = SIZE_FROM_BYTES[mimeType]?.(upload.head) ?? null;
    return size && { ...size, frames: 1, pixels: size.width * size.height, uniformPages: true };
  }

  /** Header only: nothing here decodes pixels, so a bomb is refused before it can cost memory. */
  private async readHeader(upload: StagedUpload, mimeType: AllowedMimeType): Promise<Header> {
    const first = await this.metadata(upload, { page: 0 });
    const frames = first.pages ?? 1;
    let pixels = first.width * first.height;
    let uniformPages = true;
    if (mimeType === 'image/tiff' && frames > 1) {
      if (frames > this.maxFrames) throw tooLarge(`more than ${this.maxFrames} frames`);
      for (let page = 1; page < frames; page++) {
        const meta = await this.metadata(upload, { page });
        this.checkLimits({ width: meta.width, height: meta.height, frames: 1, pixels: meta.width * meta.height, uniformPages: true });
        if (meta.width !== first.width || meta.height !== first.height) uniformPages = false;
        pixels += meta.width * meta.height;
        if (pixels > this.maxPixels) throw tooLarge(`more than ${this.maxPixels} pixels across pages`);
      }
    } else {
      pixels *= frames;
    }
    return { width: first.width, height: first.height, frames, pixels, uniformPages, depth: first.depth };
  }

  private async metadata(upload: StagedUpload, options: SharpOptions): Promise<Metadata & { width: number; height: number }> {
    try {
      const meta = await this.sharp!(sharpInput(upload), { ...options, limitInputPixels: this.maxPixels, failOn: 'error' }).metadata();
      if (!meta.width || !meta.height) throw new Error('no dimensions');
      return meta as Metadata & { width: number; height: number };
    } catch (error) {
      throw this.decodeFailure(upload, error);
    }
  }

  private checkLimits(header: Header): void {
    if (header.width > this.maxDimension || header.height > this.maxDimension) {
      throw tooLarge(`a side is longer than ${this.maxDimension} pixels`);
    }
    if (header.frames > this.maxFrames) throw tooLarge(`more than ${this.maxFrames} frames`);
    if (header.pixels > this.maxPixels) throw tooLarge(`more than ${this.maxPixels} pixels`);
  }

  /**
   * Decodes every frame, shrinking to 8×8 as it goes: the decoder must still read the compressed
   * stream (so truncation and corruption fail), but no full-size image is materialised and no
   * per-pixel statistics are computed (a 2000×2000 PNG: ~46 ms instead of ~190 ms). One exception:
   * a JPEG's shrink-on-load stops before a last, partial row of blocks, so a baseline JPEG cut off
   * there is caught by checkStructure (no EOI after the scan) instead.
   *
   * Small single-frame images are decoded to raw pixels instead (at most ~1 MB): the shrink
   * pipeline has a fixed cost of ~1.5 ms that dominates below about 512×512 (a 144×144 PNG: ~1 ms
   * instead of ~2.5 ms). WebP decodes faster through the shrink at every size, so it always takes it.
   */
  private async decodeFully(upload: StagedUpload, mimeType: AllowedMimeType, header: Header): Promise<void> {
    // A plain PNG in memory is proved decodable without libvips (png-check.ts); anything the check
    // does not vouch for is decoded by sharp below, which keeps the verdict and its error codes.
    if (mimeType === 'image/png' && upload.buffer && header.frames === 1 && (await plainPngDecodes(upload.buffer))) return;
    const pages = header.frames > 1 && !header.uniformPages ? [...Array(header.frames).keys()] : [null];
    const whole = header.frames === 1 && header.pixels <= RAW_DECODE_MAX_PIXELS && mimeType !== 'image/webp';
    // A whole decode materialises every pixel: let libvips refuse any image larger than the header
    // said, wherever the header was read, so it can never allocate more than that.
    const limitInputPixels = whole ? header.pixels : this.maxPixels;
    for (const page of pages) {
      const options: SharpOptions =
        page === null ? { pages: ANIMATED.has(mimeType) ? -1 : 1 } : { page, pages: 1 };
      try {
        const image = this.sharp!(sharpInput(upload), { ...options, failOn: 'error', limitInputPixels, sequentialRead: true });
        await (whole ? image : image.resize(8, 8, { fit: 'fill' })).raw().toBuffer();
      } catch (error) {
        throw this.decodeFailure(upload, error);
      }
    }
  }

  private decodeFailure(upload: StagedUpload, error: unknown): DomainError {
    if (isDomainError(error)) return error;
    const message = error instanceof Error ? error.message : String(error);
    if (/exceeds pixel limit/i.test(message)) return tooLarge(`more than ${this.maxPixels} pixels`);
    if (looksLikeText(upload.head)) {
      return new DomainError('unsupported_media_type', 'the file is text with an image signature', { reason: 'text_payload' });
    }
    return new DomainError('corrupt_image', 'the image is truncated or corrupt', undefined, { cause: error });
  }

  private async reencodeCopy(upload: StagedUpload, facts: ImageFacts, header: Header): Promise<InspectedImage> {
    if (header.frames > 1 && !header.uniformPages) {
      throw new DomainError('unsupported_media_type', 'multi-page TIFFs with pages of different sizes cannot be re-encoded');
    }
    const pipeline = this.encoder(upload, facts.mimeType, header);
    let stored: StagedUpload;
    try {
      stored = await this.staging.stage(pipeline, { maxBytes: this.maxOutputBytes });
    } catch (error) {
      pipeline.destroy();
      if (isDomainError(error, 'payload_too_large')) {
        throw new DomainError('image_too_large', `the image is too large: its re-encoded copy exceeds ${this.maxOutputBytes} bytes`, {
          reason: 'reencoded_size',
          max_bytes: this.maxOutputBytes,
        });
      }
      throw error;
    }
    try {
      const meta = await this.sharp!(sharpInput(stored), { failOn: 'error' }).metadata();
      return { facts: { ...facts, width: meta.width ?? facts.width, height: meta.pageHeight ?? meta.height ?? facts.height }, stored };
    } catch (error) {
      await stored.dispose();
      throw error;
    }
  }

  private encoder(upload: StagedUpload, mimeType: AllowedMimeType, header: Header): Sharp {
    const normalize = this.reencode === 'normalize';
    const image = this.sharp!(sharpInput(upload), { pages: ANIMATED.has(mimeType) ? -1 : 1, failOn: 'error', limitInputPixels: this.maxPixels }).autoOrient();
    if (normalize) image.toColourspace('srgb');
    else {
      image.keepIccProfile();
      if (header.depth === 'ushort' && (mimeType === 'image/png' || mimeType === 'image/tiff')) image.toColourspace('rgb16');
    }
    switch (mimeType) {
      case 'image/jpeg':
        return image.jpeg(normalize ? { quality: 85, progressive: false, chromaSubsampling: '4:2:0' } : { quality: 92 });
      case 'image/png':
        return image.png({ compressionLevel: 6 });
      case 'image/webp':
        return image.webp({ quality: normalize ? 85 : 92 });
      case 'image/gif':
        return image.gif();
      case 'image/tiff':
        return image.tiff({ compression: 'lzw' });
      default:
        throw new Error(`no encoder for ${mimeType}`);
    }
  }
}

/**
 * A GIF measured by its logical screen too: libvips reports the frames' extent, but viewers and
 * decoders elsewhere (browsers, PIL) allocate the screen, so a 35-byte GIF declaring 65535×65535
 * around one 1×1 frame is a bomb for whoever displays it.
 */
function withGifScreen(header: Header, head: Buffer): Header {
  if (head.length < 10) return header;
  const width = Math.max(header.width, head.readUInt16LE(6));
  const height = Math.max(header.height, head.readUInt16LE(8));
  return { ...header, width, height, pixels: Math.max(header.pixels, width * height * header.frames) };
}

/** What sharp reads: the bytes in memory, or the spooled file. */
function sharpInput(upload: StagedUpload): Buffer | string {
  return upload.buffer ?? upload.path!;
}

function tooLarge(message: string): DomainError {
  return new DomainError('image_too_large', `the image is too large: ${message}`);
}

class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await task();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}
