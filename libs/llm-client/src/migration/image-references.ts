import type { PathSegment } from './json-path.ts';

/** A Media API placeholder: `data:image/<subtype>;jan_<id>` or `data:image/<subtype>;base64,jan_<id>`. */
export const PLACEHOLDER_PATTERN = /data:image\/[a-z0-9.+-]+;(?:base64,)?jan_[0-9a-z]{26}(?![0-9a-z])/i;
const WHOLE_PLACEHOLDER = /^\s*data:(image\/[a-z0-9.+-]+);(?:base64,)?(jan_[0-9a-z]{26})\s*$/i;
/** An inline base64 image that is not a placeholder. */
export const RAW_BASE64_IMAGE = /data:image\/[a-z0-9.+-]+;base64,(?!jan_[0-9a-z]{26}(?![0-9a-z]))/i;

export function containsPlaceholder(value: unknown): boolean {
  let found = false;
  const walk = (node: unknown): void => {
    if (found) return;
    if (typeof node === 'string') {
      if (node.includes('jan_') && PLACEHOLDER_PATTERN.test(node)) found = true;
    } else if (Array.isArray(node)) {
      for (const item of node) walk(item);
    } else if (node !== null && typeof node === 'object') {
      for (const key of Object.keys(node)) walk((node as Record<string, unknown>)[key]);
    }
  };
  walk(value);
  return found;
}

/** `{ mime, id }` when the whole string is one placeholder. */
export function parsePlaceholder(text: string): { mime: string; id: string } | null {
  const match = WHOLE_PLACEHOLDER.exec(text);
  return match ? { mime: match[1]!.toLowerCase(), id: match[2]!.toLowerCase() } : null;
}

const IMAGE_TYPES = new Set(['image', 'image_url', 'input_image']);

function typeOf(node: unknown): string | undefined {
  if (node === null || typeof node !== 'object' || Array.isArray(node)) return undefined;
  const type = (node as Record<string, unknown>)['type'];
  return typeof type === 'string' ? type.toLowerCase() : undefined;
}

/**
 * Whether a string sits where chat APIs put an image: OpenAI chat `image_url` (string or
 * `{ url }`), Responses `input_image.image_url`, and Anthropic-style
 * `{ type: 'image', source: { url | data } }`.
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
  return false;
}

/** `source.url` or `source.data` of an Anthropic-style `{ type: 'image', source }` block. */
export function isAnthropicSourcePosition(path: readonly PathSegment[], parents: readonly unknown[]): boolean {
  const key = path[path.length - 1];
  return (key === 'url' || key === 'data') && path[path.length - 2] === 'source' && typeOf(parents[parents.length - 2]) === 'image';
}

/**
 * What an image position holds — the one reading that the cutover check (what is a violation)
 * and dual-write (what to ingest) share:
 * - `placeholder`: a `jan_` reference already;
 * - `data_url`: a `data:<mime>;base64,…` URL;
 * - `base64`: the bare base64 of an Anthropic-style `source: { type: 'base64', media_type, data }`
 *   (`mediaType` is that `media_type`, when it names a type);
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
  if (typeOf(parent) === 'base64') {
    const mediaType = (parent as Record<string, unknown>)['media_type'];
    return {
      kind: 'base64',
      mediaType: typeof mediaType === 'string' && MEDIA_TYPE.test(mediaType.trim()) ? mediaType.trim().toLowerCase() : undefined,
    };
  }
  return { kind: 'unrecognised' };
}
