import type { MediaClient, RequestOptions } from '../client.ts';
import type { ResolveMode } from '../types.ts';
import { containsPlaceholder } from './image-references.ts';

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
  /** Leave placeholders the service cannot resolve in place instead of failing. */
  keepUnresolved?: boolean;
  userId?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
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

function report(hook: LatencyHook | undefined, ms: number, meta: ResolveLatencyMeta): void {
  if (!hook) return;
  try {
    hook(ms, meta);
  } catch {
    // Metrics must never fail the chat request.
  }
}

/**
 * Resolves every `jan_` placeholder in an OpenAI-style request body right before the provider
 * call, in the mode the provider needs. A body without placeholders is returned as is, without
 * a network call. Errors are thrown (after the latency hook has seen them): the caller decides
 * whether to fall back to legacy URLs.
 */
export async function resolveForProvider<T>(
  client: MediaClient,
  body: T,
  options: ResolveForProviderOptions = {},
): Promise<T> {
  const provider = providerOf(body, options.provider);
  const mode = options.mode ?? chooseResolveMode(provider, options.inlineProviders);
  const started = performance.now();
  if (!containsPlaceholder(body)) {
    report(options.onLatency, performance.now() - started, { provider, mode, called: false, ok: true });
    return body;
  }
  const requestOptions: RequestOptions = { userId: options.userId, signal: options.signal, timeoutMs: options.timeoutMs };
  try {
    const resolved = await client.media.resolvePayload(body, { mode, keepUnresolved: options.keepUnresolved }, requestOptions);
    report(options.onLatency, performance.now() - started, { provider, mode, called: true, ok: true });
    return resolved;
  } catch (error) {
    report(options.onLatency, performance.now() - started, { provider, mode, called: true, ok: false, error });
    throw error;
  }
}
