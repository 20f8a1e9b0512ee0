import type { MediaClient, RequestOptions } from '../client.ts';
import { UnresolvablePlaceholderError } from '../errors.ts';
import type { ResolveMode, ResolvePayloadResult } from '../types.ts';
import {
  containsPlaceholder,
  GEMINI_FILE_KEYS,
  isAnthropicSourcePosition,
  isBareReferencePosition,
  isGeminiFilePosition,
  isGeminiInlinePosition,
  parsePlaceholder,
  placeholderIdsIn,
} from './image-references.ts';
import { formatPath, replaceAtPaths, visitStrings, type PathSegment } from './json-path.ts';

/**
 * Providers that cannot fetch an image from a URL and need the bytes in the request:
 * Bedrock (Converse takes bytes only), Vertex AI and the Gemini API (inline data or their own
 * file stores), and local runtimes (Ollama, llama.cpp — Jan's own local models) that run
 * without outbound network access.
 */
export const DEFAULT_INLINE_PROVIDERS: readonly string[] = [
  'bedrock',
  'aws-bedrock',
  'vertex',
  'vertex_ai',
  'vertexai',
  'google-vertex',
  'gemini',
  'google',
  'ollama',
  'llamacpp',
  'llama.cpp',
  'local',
];

export interface ResolveLatencyMeta {
  provider: string | undefined;
  mode: ResolveMode;
  /** False when the body had no placeholder and no call was made. */
  called: boolean;
  ok: boolean;
  error?: unknown;
}

export type LatencyHook = (ms: number, meta: ResolveLatencyMeta) => void;

export interface ResolveForProviderOptions {
  /** Provider route, e.g. `openai`, `bedrock`, `vertex`; defaults to the `<provider>/` prefix of `body.model`. */
  provider?: string;
  /** Providers that get `mode: 'inline'` (matched case-insensitively on the name before any `/` or `:`). */
  inlineProviders?: readonly string[];
  /** Force a mode instead of choosing by provider. */
  mode?: ResolveMode;
  /**
   * Leave placeholders that cannot be resolved in place instead of failing: those the service does
   * not know (missing, pending, someone else's) and those inside a longer string where a bare URL
   * is required (see {@link UnresolvablePlaceholderError}). Their ids go to `onUnresolved`.
   */
  keepUnresolved?: boolean;
  /**
   * Told the ids of the placeholders left as they were (only with `keepUnresolved`, and only when
   * there are some), once per call, before it returns. A hook that throws is ignored.
   */
  onUnresolved?: (ids: string[]) => void;
  userId?: string;
  signal?: AbortSignal;
  /** Per-attempt timeout (the client's `timeoutMs` by default). */
  timeoutMs?: number;
  /** Overall deadline of each resolve call, retries included (the client's `resolveDeadlineMs`, 10 s, by default). */
  deadlineMs?: number;
  /** Told how long resolution took (also when it failed or was skipped). */
  onLatency?: LatencyHook;
}

function normalise(provider: string): string {
  return provider.trim().toLowerCase().split(/[/:]/, 1)[0] ?? '';
}

/** The provider a body targets: the explicit one, else the `bedrock/` in `model: 'bedrock/…'`. */
export function providerOf(body: unknown, explicit?: string): string | undefined {
  if (explicit) return explicit;
  const model = body && typeof body === 'object' ? (body as Record<string, unknown>)['model'] : undefined;
  if (typeof model === 'string' && model.includes('/')) return model.split('/', 1)[0];
  return undefined;
}

/** `inline` for providers in the list, `url` for everyone else. */
export function chooseResolveMode(
  provider: string | undefined,
  inlineProviders: readonly string[] = DEFAULT_INLINE_PROVIDERS,
): ResolveMode {
  if (!provider) return 'url';
  const name = normalise(provider);
  return inlineProviders.some((p) => normalise(p) === name) ? 'inline' : 'url';
}

/** A placeholder inside a longer string in a field that must be a bare URL: left out of the resolve call. */
interface EmbeddedSlot {
  path: readonly PathSegment[];
  text: string;
  ids: string[];
}

function embeddedPlaceholderSlots(body: unknown): EmbeddedSlot[] {
  const slots: EmbeddedSlot[] = [];
  visitStrings(body, (text, path, parents) => {
    if (parsePlaceholder(text) || !isBareReferencePosition(path, parents)) return;
    const ids = placeholderIdsIn(text);
    if (ids.length > 0) slots.push({ path: [...path], text, ids });
  });
  return slots;
}

/** Puts each slot's original string back at its path in `resolved` (a fresh copy). */
function restore(resolved: unknown, slots: readonly EmbeddedSlot[]): void {
  for (const slot of slots) {
    const holder = valueAt(resolved, slot.path.slice(0, -1));
    if (holder !== null && typeof holder === 'object') (holder as Record<PathSegment, unknown>)[slot.path[slot.path.length - 1]!] = slot.text;
  }
}

function report(hook: LatencyHook | undefined, ms: number, meta: ResolveLatencyMeta): void {
  if (!hook) return;
  try {
    hook(ms, meta);
  } catch {
    // Metrics must never fail the chat request.
  }
}

/** Where an Anthropic-style image source holds a placeholder: the source object's path and its key. */
interface SourceSlot {
  source: readonly PathSegment[];
  key: 'data' | 'url';
}

function anthropicPlaceholderSlots(body: unknown): SourceSlot[] {
  const slots: SourceSlot[] = [];
  visitStrings(body, (text, path, parents) => {
    if (isAnthropicSourcePosition(path, parents) && parsePlaceholder(text)) {
      slots.push({ source: path.slice(0, -1), key: path[path.length - 1] as 'data' | 'url' });
    }
  });
  return slots;
}

/** `data:<mime>;base64,<bytes>` split into its type and bare base64; `null` for anything else. */
function splitDataUrl(value: string): { mime: string; base64: string } | null {
  const trimmed = value.trim();
  const comma = trimmed.indexOf(',');
  const head = /^data:([^;,]+)(?:;[^;,]*)*;base64$/i.exec(comma > 0 ? trimmed.slice(0, comma) : '');
  return head ? { mime: head[1]!.toLowerCase(), base64: trimmed.slice(comma + 1) } : null;
}

/** The value at `path`, or `undefined` when the path leads nowhere. */
function valueAt(root: unknown, path: readonly PathSegment[]): unknown {
  let node = root;
  for (const segment of path) {
    node = node !== null && typeof node === 'object' ? (node as Record<PathSegment, unknown>)[segment] : undefined;
  }
  return node;
}

/**
 * A Gemini part that holds a placeholder where it must end up as inline bytes: `inline_data.data` or
 * `file_data.file_uri` (either spelling). The path of that string and the placeholder.
 */
interface GeminiSlot {
  path: readonly PathSegment[];
  text: string;
}

function geminiPlaceholderSlots(body: unknown): GeminiSlot[] {
  const slots: GeminiSlot[] = [];
  visitStrings(body, (text, path, parents) => {
    if ((isGeminiInlinePosition(path, parents) || isGeminiFilePosition(path, parents)) && parsePlaceholder(text)) {
      slots.push({ path: [...path], text });
    }
  });
  return slots;
}

/**
 * Replaces a part's `file_data` (`fileData`) with an empty `inline_data` (`inlineData`, the same
 * spelling family) at the same place among its keys, and returns the new key. The file object's own
 * fields go with it: a URI and its metadata mean nothing next to inline bytes.
 */
function fileToInlinePart(part: Record<string, unknown>, fileKey: string): string {
  const inlineKey = fileKey === 'fileData' ? 'inlineData' : 'inline_data';
  for (const [key, value] of Object.entries(part)) {
    delete part[key];
    if (key === fileKey) part[inlineKey] = {};
    else part[key] = value;
  }
  return inlineKey;
}

/**
 * Gemini's `inline_data` holds bare base64 next to its `mime_type`; the service answers with a whole
 * `data:<mime>;base64,…` URL. Each slot becomes `data: '<bare base64>'` and the object's type is set
 * to the stored object's real one, under the key(s) it already uses (`mime_type` or the JS SDK's
 * `mimeType`; the container's own spelling when it had neither). A `file_data` part becomes such an
 * `inline_data` part first (Gemini refuses a `data:` URL in `file_uri`). Placeholders left
 * unresolved (`keepUnresolved`) stay as they are, in the part they were in.
 */
function toGeminiInlineData(resolved: unknown, slots: readonly GeminiSlot[]): void {
  for (const slot of slots) {
    const value = valueAt(resolved, slot.path);
    const inline = typeof value === 'string' ? splitDataUrl(value) : null;
    const part = valueAt(resolved, slot.path.slice(0, -2));
    if (!inline || part === null || typeof part !== 'object' || Array.isArray(part)) continue;
    let blobKey = slot.path[slot.path.length - 2] as string;
    if (GEMINI_FILE_KEYS.has(blobKey)) blobKey = fileToInlinePart(part as Record<string, unknown>, blobKey);
    const fields = (part as Record<string, unknown>)[blobKey] as Record<string, unknown>;
    const mimeKeys = ['mime_type', 'mimeType'].filter((key) => key in fields);
    if (mimeKeys.length === 0) mimeKeys.push(blobKey === 'inlineData' ? 'mimeType' : 'mime_type');
    for (const key of mimeKeys) fields[key] = inline.mime;
    fields['data'] = inline.base64;
  }
}

/**
 * `inline_data` cannot carry a URL (and `file_data` parts become `inline_data`, see
 * {@link toGeminiInlineData}), so their placeholders are resolved inline whatever the mode: in
 * URL mode they go to the service in a call of their own (`mode: 'inline'`, so the inline caps
 * apply to them alone) and the rest of the body in the caller's mode, the two calls in parallel.
 */
async function resolveSplit(
  client: MediaClient,
  body: unknown,
  gemini: readonly GeminiSlot[],
  options: ResolveForProviderOptions,
  requestOptions: RequestOptions,
): Promise<ResolvePayloadResult<unknown>> {
  const keepUnresolved = options.keepUnresolved;
  // A copy without the Gemini part placeholders (replaceAtPaths clones): nothing of the caller's is touched.
  const rest = replaceAtPaths(body, gemini.map((slot) => ({ path: slot.path, value: '' })));
  // Once one call fails the other's answer can no longer be used: it is cancelled rather than
  // left downloading (the inline one carries every image's bytes). The caller's signal ends both.
  const both = new AbortController();
  const onCallerAbort = () => both.abort(requestOptions.signal?.reason);
  if (requestOptions.signal?.aborted) onCallerAbort();
  requestOptions.signal?.addEventListener('abort', onCallerAbort, { once: true });
  const shared: RequestOptions = { ...requestOptions, signal: both.signal };
  const cancelOther = (error: unknown): never => {
    both.abort(error);
    throw error;
  };
  let inlined: ResolvePayloadResult<unknown[]>;
  let resolved: ResolvePayloadResult<unknown>;
  try {
    [inlined, resolved] = await Promise.all([
      client.media.resolvePayloadResult(gemini.map((slot) => slot.text), { mode: 'inline', keepUnresolved }, shared).catch(cancelOther),
      containsPlaceholder(rest)
        ? client.media.resolvePayloadResult(rest, { mode: 'url', keepUnresolved }, shared).catch(cancelOther)
        : { payload: rest, unresolved: [] },
    ]);
  } finally {
    requestOptions.signal?.removeEventListener('abort', onCallerAbort);
  }
  // Both answers are fresh (a parse of the service's JSON, or the copy above): filled in in place.
  gemini.forEach((slot, i) => {
    const holder = valueAt(resolved.payload, slot.path.slice(0, -1));
    if (holder !== null && typeof holder === 'object') (holder as Record<PathSegment, unknown>)[slot.path[slot.path.length - 1]!] = inlined.payload[i];
  });
  return { payload: resolved.payload, unresolved: [...inlined.unresolved, ...resolved.unresolved] };
}

/**
 * The service swaps placeholders inside strings and knows nothing of block shapes, so an
 * Anthropic-style source comes back as `{ type: 'base64', data: 'https://…' }` (URL mode) or
 * `{ type: 'url', url: 'data:…;base64,…' }` (inline mode), which Anthropic refuses. Each slot that
 * held a placeholder is rewritten to the shape its resolved value needs: an http(s) URL becomes
 * `{ type: 'url', url }`, inline bytes `{ type: 'base64', media_type, data }`. Placeholders left
 * unresolved (`keepUnresolved`) stay as they are.
 */
function toAnthropicSources(resolved: unknown, slots: readonly SourceSlot[]): void {
  for (const slot of slots) {
    const source = valueAt(resolved, slot.source);
    if (source === null || typeof source !== 'object' || Array.isArray(source)) continue;
    const fields = source as Record<string, unknown>;
    const value = fields[slot.key];
    if (typeof value !== 'string' || parsePlaceholder(value)) continue;
    const trimmed = value.trim();
    const inline = splitDataUrl(trimmed);
    if (inline) {
      delete fields['url'];
      fields['type'] = 'base64';
      fields['media_type'] = inline.mime;
      fields['data'] = inline.base64;
    } else if (/^https?:\/\//i.test(trimmed)) {
      delete fields['data'];
      delete fields['media_type'];
      fields['type'] = 'url';
      fields['url'] = trimmed;
    }
  }
}

/**
 * Resolves every `jan_` placeholder in a chat request body right before the provider call, in
 * the mode the provider needs. A body without placeholders is returned as is, without a network
 * call. Anthropic-style `{ type: 'image', source }` blocks come back in the shape their resolved
 * value needs (`url` source for a URL, `base64` source for inline bytes), whichever of
 * `source.data` or `source.url` held the placeholder. Gemini-native parts
 * (`{ inline_data: { mime_type, data } }` or the JS SDK's `{ inlineData: { mimeType, data } }`) come
 * back with bare base64 in `data` and the stored object's type in `mime_type`; a `file_data` part
 * (`{ file_data: { mime_type, file_uri } }` / `{ fileData: { mimeType, fileUri } }`) whose `file_uri`
 * is a placeholder comes back as such an `inline_data` (`inlineData`) part. They are always
 * resolved inline, also in URL mode (`inline_data` cannot carry a URL, and Google cannot fetch a
 * Media API on a private network), so they need the service's `MEDIA_RESOLVE_INLINE=true` and its
 * inline caps apply to them. Placeholders inside any other string are resolved in place, as the
 * service does — except in a field that must hold a bare URL (an image URL, a source, Gemini's
 * `data` or `file_uri`): there a placeholder inside a longer string would become an invalid value,
 * so it throws {@link UnresolvablePlaceholderError} before any call, or with `keepUnresolved` is
 * left as it is and reported. Errors are thrown (after the latency hook has seen them): the caller
 * decides whether to fall back to legacy URLs.
 */
export async function resolveForProvider<T>(
  client: MediaClient,
  body: T,
  options: ResolveForProviderOptions = {},
): Promise<T> {
  return (await resolveForProviderResult(client, body, options)).payload;
}

/**
 * {@link resolveForProvider}, also returning the ids of the placeholders left as they were (with
 * `keepUnresolved`): those the service could not resolve and those inside a longer string where a
 * bare URL is required. The same ids go to `onUnresolved` when it is given.
 */
export async function resolveForProviderResult<T>(
  client: MediaClient,
  body: T,
  options: ResolveForProviderOptions = {},
): Promise<ResolvePayloadResult<T>> {
  const provider = providerOf(body, options.provider);
  const mode = options.mode ?? chooseResolveMode(provider, options.inlineProviders);
  const started = performance.now();
  if (!containsPlaceholder(body)) {
    report(options.onLatency, performance.now() - started, { provider, mode, called: false, ok: true });
    return { payload: body, unresolved: [] };
  }
  const embedded = embeddedPlaceholderSlots(body);
  const kept = [...new Set(embedded.flatMap((slot) => slot.ids))];
  if (embedded.length > 0 && !options.keepUnresolved) {
    const error = new UnresolvablePlaceholderError(kept, embedded.map((slot) => formatPath(slot.path)));
    report(options.onLatency, performance.now() - started, { provider, mode, called: false, ok: false, error });
    throw error;
  }
  // The call sees a copy without them; they are put back, unchanged, in the answer. (With none,
  // the body is sent as it is: no copy, and no second walk to find what the first one found.)
  const sendable = embedded.length === 0 ? body : (replaceAtPaths(body, embedded.map((slot) => ({ path: slot.path, value: '' }))) as T);
  if (embedded.length > 0 && !containsPlaceholder(sendable)) {
    report(options.onLatency, performance.now() - started, { provider, mode, called: false, ok: true });
    return finish({ payload: body, unresolved: kept }, options);
  }
  const requestOptions: RequestOptions = {
    userId: options.userId,
    signal: options.signal,
    timeoutMs: options.timeoutMs,
    deadlineMs: options.deadlineMs,
  };
  try {
    const anthropic = anthropicPlaceholderSlots(sendable);
    const gemini = geminiPlaceholderSlots(sendable);
    const result =
      mode === 'url' && gemini.length > 0
        ? ((await resolveSplit(client, sendable, gemini, options, requestOptions)) as ResolvePayloadResult<T>)
        : await client.media.resolvePayloadResult(sendable, { mode, keepUnresolved: options.keepUnresolved }, requestOptions);
    // The answer is a fresh parse of the service's JSON (or a copy): rewriting it in place touches nothing of the caller's.
    const resolved = result.payload;
    toAnthropicSources(resolved, anthropic);
    toGeminiInlineData(resolved, gemini);
    restore(resolved, embedded);
    report(options.onLatency, performance.now() - started, { provider, mode, called: true, ok: true });
    return finish({ payload: resolved, unresolved: [...new Set([...result.unresolved, ...kept])] }, options);
  } catch (error) {
    report(options.onLatency, performance.now() - started, { provider, mode, called: true, ok: false, error });
    throw error;
  }
}

function finish<T>(result: ResolvePayloadResult<T>, options: ResolveForProviderOptions): ResolvePayloadResult<T> {
  if (result.unresolved.length > 0 && options.onUnresolved) {
    try {
      options.onUnresolved([...result.unresolved]);
    } catch {
      // Reporting must never fail the chat request.
    }
  }
  return result;
}
