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
  if ((key === 'url' || key === 'data') && parentKey === 'source' && typeOf(grandparent) === 'image') return true;
  return false;
}
