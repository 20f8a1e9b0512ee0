/** The image types this service stores, with the extension used in storage keys. */
const ALLOWED_IMAGE_TYPES = {
  'image/jpeg': 'jpg',
  'image/png': 'png',
  'image/webp': 'webp',
  'image/gif': 'gif',
  'image/bmp': 'bmp',
  'image/tiff': 'tiff',
} as const;

export type AllowedMimeType = keyof typeof ALLOWED_IMAGE_TYPES;

export function isAllowedMimeType(mime: string): mime is AllowedMimeType {
  return Object.prototype.hasOwnProperty.call(ALLOWED_IMAGE_TYPES, mime);
}

export function extensionFor(mime: AllowedMimeType): string {
  return ALLOWED_IMAGE_TYPES[mime];
}

/** `image/jpg` and `image/x-ms-bmp` are common spellings of allowed types. */
export function normalizeMimeType(mime: string | undefined | null): string | undefined {
  if (!mime) return undefined;
  const base = mime.split(';')[0].trim().toLowerCase();
  switch (base) {
    case 'image/jpg':
    case 'image/pjpeg':
      return 'image/jpeg';
    case 'image/x-ms-bmp':
    case 'image/x-bmp':
      return 'image/bmp';
    case 'image/tif':
      return 'image/tiff';
    default:
      return base;
  }
}
