import { MediaClientError } from '../errors.ts';
import { formatPath, visitStrings } from './json-path.ts';
import { imageAt, RAW_BASE64_IMAGE, type ImageValue } from './image-references.ts';

/**
 * Why a value breaks the cutover rule:
 * - `raw_base64`: image bytes inline (a `data:image/...;base64,` URL, a base64 `source.data`, or the
 *   `data` of a Gemini `inline_data` image part);
 * - `external_url`: an http(s) URL in an image position instead of a `jan_` reference;
 * - `unrecognised`: anything else in an image position that is not a `jan_` placeholder.
 */
export type CutoverViolationKind = 'raw_base64' | 'external_url' | 'unrecognised';

export interface CutoverViolation {
  /** JSON path, e.g. `messages[2].content[1].image_url.url`. */
  path: string;
  kind: CutoverViolationKind;
  /** A short, safe rendering: base64 is cut and URL queries (which may hold signatures) are dropped. */
  preview: string;
}

/** Thrown by {@link validateCutover}; `violations` lists every offending value. */
export class CutoverViolationError extends MediaClientError {
  readonly code = 'cutover_violation';
  readonly violations: readonly CutoverViolation[];

  constructor(violations: readonly CutoverViolation[]) {
    const listed = violations.map((v) => `${v.path} (${describeKind(v.kind)})`);
    const shown = listed.slice(0, 10).join(', ') + (listed.length > 10 ? `, and ${listed.length - 10} more` : '');
    super(
      `Request carries ${violations.length} image${violations.length === 1 ? '' : 's'} that ` +
        `${violations.length === 1 ? 'is' : 'are'} not a jan_ media reference: ${shown}. ` +
        'Upload images to the Media API and send data:<mime>;jan_<id> placeholders instead.',
    );
    this.violations = violations;
  }
}

function describeKind(kind: CutoverViolationKind): string {
  switch (kind) {
    case 'raw_base64':
      return 'raw base64 image';
    case 'external_url':
      return 'non-jan image URL';
    default:
      return 'not a jan_ reference';
  }
}

/** What a violation shows of its value: never image bytes, never a URL's query (it may hold a signature). */
function preview(text: string, kind: CutoverViolationKind): string {
  const trimmed = text.trim();
  const length = `(${trimmed.length} chars)`;
  if (/^data:/i.test(trimmed)) {
    const comma = trimmed.indexOf(',');
    const head = comma >= 0 ? trimmed.slice(0, comma + 1) : trimmed.slice(0, 40);
    return `${head}… ${length}`;
  }
  if (kind === 'raw_base64') {
    // A base64 `source.data`, or text that carries a data URL somewhere inside: name it, show none of it.
    const inline = /data:[\w.+-]+\/[\w.+-]+(?:;[^,;\s]*)*;base64,/i.exec(trimmed);
    return inline ? `text with an inline ${inline[0]}… ${length}` : `base64 data ${length}`;
  }
  try {
    const url = new URL(trimmed);
    if (url.protocol === 'http:' || url.protocol === 'https:') {
      return `${url.origin}${url.pathname.slice(0, 80)}${url.search ? '?…' : ''}`;
    }
  } catch {
    // not a URL
  }
  if (trimmed.length > 40 && /^[A-Za-z0-9+/=_\s-]+$/.test(trimmed)) return `base64-like data ${length}`;
  return trimmed.length > 40 ? `${trimmed.slice(0, 40)}… ${length}` : trimmed;
}

function violationKind(image: ImageValue): CutoverViolationKind | null {
  switch (image.kind) {
    case 'placeholder':
      return null;
    case 'data_url':
    case 'base64':
      return 'raw_base64';
    case 'external_url':
      return 'external_url';
    default:
      return 'unrecognised';
  }
}

/**
 * Every place in a chat body (OpenAI, Anthropic or Gemini-native shapes, or any JSON) that still carries an image other than a
 * `jan_` placeholder: image positions holding anything but a placeholder, and inline
 * `data:image/...;base64,` URLs anywhere else.
 */
export function findCutoverViolations(body: unknown): CutoverViolation[] {
  const violations: CutoverViolation[] = [];
  visitStrings(body, (text, path, parents) => {
    const image = imageAt(text, path, parents);
    if (image) {
      const kind = violationKind(image);
      if (kind) violations.push({ path: formatPath(path), kind, preview: preview(text, kind) });
      return;
    }
    if (text.length > 20 && RAW_BASE64_IMAGE.test(text)) {
      violations.push({ path: formatPath(path), kind: 'raw_base64', preview: preview(text, 'raw_base64') });
    }
  });
  return violations;
}

/** Returns `body` unchanged when it passes; throws {@link CutoverViolationError} otherwise. */
export function validateCutover<T>(body: T): T {
  const violations = findCutoverViolations(body);
  if (violations.length > 0) throw new CutoverViolationError(violations);
  return body;
}
