import type { PathSegment } from './json-path.ts';

/**
 * A Media API placeholder: `data:image/<subtype>;jan_<id>` or `data:image/<subtype>;base64,jan_<id>`,
 * read as the service reads it (libs/domain/src/media/placeholders.ts): every letter and digit after
 * `jan_` is the id (none, or a malformed one, included: the service answers it as not found rather
 * than the SDK sending it on unresolved), and every `=` right after the id belongs to the
 * placeholder: one or two are base64 padding, more make it malformed.
 */
export const PLACEHOLDER_PATTERN = /data:image\/[a-z0-9.+-]+;(?:base64,)?(jan_[0-9a-z]*)(=*)/i;
const EVERY_PLACEHOLDER = new RegExp(PLACEHOLDER_PATTERN.source, 'gi');
const WHOLE_PLACEHOLDER = /^\s*data:(image\/[a-z0-9.+-]+);(?:base64,)?(jan_[0-9a-z]*)(=*)\s*$/i;

/** Base64 pads with at most two `=`; more make the placeholder malformed (as in the service). */
const MAX_PADDING = 2;

/**
 * A placeholder's id, lowercased, without its padding unless the padding is what is wrong: as the
 * service reports it (in `unresolved`, `details.ids`), except that the service keeps the case of
 * a malformed id as written (`JAN_ABC`).
 */
function idAsWritten(written: string, padding: string): string {
  return (padding.length <= MAX_PADDING ? written : written + padding).toLowerCase();
}
/** An inline base64 image that is not a placeholder (base64 has no `_`, so `jan_` never starts real data). */
export const RAW_BASE64_IMAGE = /data:image\/[a-z0-9.+-]+;base64,(?!jan_)/i;

/** Cheap pre-check; case-insensitive like the pattern (and the service): `JAN_…` is a placeholder too. */
const JAN_PREFIX = /jan_/i;

/** Whether any string in `value` holds a placeholder. Iterative: any depth, as the service reads it. */
export function containsPlaceholder(value: unknown): boolean {
  const pending: unknown[] = [value];
  const seen = new Set<object>();
  while (pending.length > 0) {
    const node = pending.pop();
    if (typeof node === 'string') {
      if (JAN_PREFIX.test(node) && PLACEHOLDER_PATTERN.test(node)) return true;
    } else if (node !== null && typeof node === 'object' && !seen.has(node)) {
      seen.add(node);
      for (const child of Array.isArray(node) ? node : Object.values(node)) pending.push(child);
    }
  }
  return false;
}

/**
 * `{ mime, id }` when the whole string is one placeholder, padding included (`id` as the service
 * reports it: `jan_<id>===` for a placeholder malformed by its padding).
 */
export function parsePlaceholder(text: string): { mime: string; id: string } | null {
  const match = WHOLE_PLACEHOLDER.exec(text);
  return match ? { mime: match[1]!.toLowerCase(), id: idAsWritten(match[2]!, match[3]!) } : null;
}

/** The ids of every placeholder in `text`, wherever they sit in it, as the service reports them, in order. */
export function placeholderIdsIn(text: string): string[] {
  if (!JAN_PREFIX.test(text)) return [];
  return [...text.matchAll(EVERY_PLACEHOLDER)].map((match) => idAsWritten(match[1]!, match[2]!));
}

const IMAGE_TYPES = new Set(['image', 'image_url', 'input_image']);

function typeOf(node: unknown): string | undefined {
  if (node === null || typeof node !== 'object' || Array.isArray(node)) return undefined;
  const type = (node as Record<string, unknown>)['type'];
  return typeof type === 'string' ? type.toLowerCase() : undefined;
}

/**
 * Whether a string sits where chat APIs put an image: OpenAI chat `image_url` (string or
 * `{ url }`), Responses `input_image.image_url`, Anthropic-style
 * `{ type: 'image', source: { url | data } }`, and Gemini-native image parts
 * (`inline_data.data` / `inlineData.data`, see {@link isGeminiInlinePosition}, and a placeholder in
 * `file_data.file_uri` / `fileData.fileUri`, see {@link isGeminiFilePosition}).
 */
export function isImagePosition(path: readonly PathSegment[], parents: readonly unknown[]): boolean {
  const key = path[path.length - 1];
  const parentKey = path[path.length - 2];
  const parent = parents[parents.length - 1];
  const grandparent = parents[parents.length - 2];
  if (key === 'image_url') return true;
  if (key === 'url' && parentKey === 'image_url') return true;
  if (key === 'url' && IMAGE_TYPES.has(typeOf(parent) ?? '')) return true;
  if (isAnthropicSourcePosition(path, parents)) return true;
  if (isGeminiInlinePosition(path, parents)) return true;
  if (isGeminiFilePosition(path, parents)) return true;
  return false;
}

/** `source.url` or `source.data` of an Anthropic-style `{ type: 'image', source }` block. */
export function isAnthropicSourcePosition(path: readonly PathSegment[], parents: readonly unknown[]): boolean {
  const key = path[path.length - 1];
  return (key === 'url' || key === 'data') && path[path.length - 2] === 'source' && typeOf(parents[parents.length - 2]) === 'image';
}

/** The part keys under which Gemini carries inline bytes: REST (`inline_data`) and the JS SDK (`inlineData`). */
export const GEMINI_INLINE_KEYS: ReadonlySet<string> = new Set(['inline_data', 'inlineData']);

/** The declared type of a Gemini `inline_data` object (`mime_type`, or `mimeType` as the JS SDK writes it). */
function geminiMimeType(blob: unknown): string | undefined {
  if (blob === null || typeof blob !== 'object' || Array.isArray(blob)) return undefined;
  const fields = blob as Record<string, unknown>;
  const mime = fields['mime_type'] ?? fields['mimeType'];
  return typeof mime === 'string' ? mime.trim() : undefined;
}

/**
 * `data` of a Gemini `inline_data` (or `inlineData`) object that carries an image: its
 * `mime_type` is `image/*`, or `data` is a `jan_` placeholder (which always names an image).
 * Gemini puts PDFs, audio and video in the same shape; those are not images and the Media API
 * would refuse them, so neither dual-write nor the cutover check look at them.
 */
export function isGeminiInlinePosition(path: readonly PathSegment[], parents: readonly unknown[]): boolean {
  const key = path[path.length - 1];
  const parentKey = path[path.length - 2];
  if (key !== 'data' || typeof parentKey !== 'string' || !GEMINI_INLINE_KEYS.has(parentKey)) return false;
  const blob = parents[parents.length - 1];
  if (/^image\//i.test(geminiMimeType(blob) ?? '')) return true;
  const data = (blob as Record<string, unknown>)['data'];
  return typeof data === 'string' && parsePlaceholder(data) !== null;
}

/** The part keys under which Gemini points at a file by URI: REST (`file_data`) and the JS SDK (`fileData`). */
export const GEMINI_FILE_KEYS: ReadonlySet<string> = new Set(['file_data', 'fileData']);

/**
 * `file_uri` (or `fileUri`) of a Gemini `file_data` (or `fileData`) object, when it holds a `jan_`
 * placeholder — only then. Any other URI names a file in the provider's own reach (its Files API,
 * `gs://`, a URL it fetches itself), which the Media API could not ingest (a Files API URI needs the
 * caller's Gemini key), so dual-write and the cutover check leave those parts alone.
 */
export function isGeminiFilePosition(path: readonly PathSegment[], parents: readonly unknown[]): boolean {
  const key = path[path.length - 1];
  const parentKey = path[path.length - 2];
  if ((key !== 'file_uri' && key !== 'fileUri') || typeof parentKey !== 'string' || !GEMINI_FILE_KEYS.has(parentKey)) return false;
  const uri = (parents[parents.length - 1] as Record<string, unknown>)[key];
  return typeof uri === 'string' && parsePlaceholder(uri) !== null;
}

/**
 * What an image position holds — the one reading that the cutover check (what is a violation)
 * and dual-write (what to ingest) share:
 * - `placeholder`: a `jan_` reference already;
 * - `data_url`: a `data:<mime>;base64,…` URL;
 * - `base64`: the bare base64 of an Anthropic-style `source: { type: 'base64', media_type, data }`
 *   or of a Gemini `inline_data: { mime_type, data }` (`mediaType` is that `media_type` /
 *   `mime_type`, when it names a type);
 * - `external_url`: an http(s) URL;
 * - `unrecognised`: anything else.
 */
export type ImageValue =
  | { kind: 'placeholder'; mime: string; id: string }
  | { kind: 'data_url' }
  | { kind: 'base64'; mediaType: string | undefined }
  | { kind: 'external_url' }
  | { kind: 'unrecognised' };

const MEDIA_TYPE = /^[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+$/i;

/** The image a string holds, or `null` when it does not sit in an image position. */
export function imageAt(text: string, path: readonly PathSegment[], parents: readonly unknown[]): ImageValue | null {
  if (!isImagePosition(path, parents)) return null;
  const trimmed = text.trim();
  const placeholder = parsePlaceholder(trimmed);
  if (placeholder) return { kind: 'placeholder', ...placeholder };
  if (/^data:[^,]*;base64,/i.test(trimmed)) return { kind: 'data_url' };
  if (/^https?:\/\//i.test(trimmed)) return { kind: 'external_url' };
  const parent = parents[parents.length - 1];
  if (typeOf(parent) === 'base64') return { kind: 'base64', mediaType: mediaTypeOf((parent as Record<string, unknown>)['media_type']) };
  // Gemini's inline_data.data is bare base64 by definition (it cannot hold a URL).
  if (isGeminiInlinePosition(path, parents)) return { kind: 'base64', mediaType: mediaTypeOf(geminiMimeType(parent)) };
  return { kind: 'unrecognised' };
}

function mediaTypeOf(value: unknown): string | undefined {
  return typeof value === 'string' && MEDIA_TYPE.test(value.trim()) ? value.trim().toLowerCase() : undefined;
}

/**
 * Whether a string sits in a field that must hold one bare URL, data URL or base64 and nothing
 * around it: every image position ({@link isImagePosition}), and Gemini's `inline_data.data` and
 * `file_data.file_uri` whatever they carry. A placeholder inside a longer string there cannot be
 * resolved into a valid value.
 */
export function isBareReferencePosition(path: readonly PathSegment[], parents: readonly unknown[]): boolean {
  if (isImagePosition(path, parents)) return true;
  const key = path[path.length - 1];
  const parentKey = path[path.length - 2];
  if (typeof parentKey !== 'string') return false;
  if (key === 'data' && GEMINI_INLINE_KEYS.has(parentKey)) return true;
  return (key === 'file_uri' || key === 'fileUri') && GEMINI_FILE_KEYS.has(parentKey);
}
