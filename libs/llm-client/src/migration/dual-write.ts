import type { MediaClient, RequestOptions } from '../client.ts';
import { APIConnectionTimeoutError, MediaClientError } from '../errors.ts';
import { formatPath, replaceAtPaths, visitStrings, type PathSegment } from './json-path.ts';
import { imageAt, parsePlaceholder } from './image-references.ts';

export interface DualWriteResult {
  /** `data:<mime>;jan_<id>`, or `null` when the media service could not take the image. */
  ref: string | null;
  id: string | null;
  /**
   * The input, untouched: what llm-api keeps sending (or replays) while the migration runs. In
   * `dualWriteBody` it is the value found at `path` — for an Anthropic-style base64 `source.data`
   * or a Gemini `inline_data.data`, the bare base64 (the ingest itself is sent as `data:<media_type>;base64,<data>`).
   */
  legacyUrl: string;
  deduped?: boolean;
  /** Why `ref` is null. Never thrown. */
  error?: unknown;
}

export interface DualWriteOptions {
  userId?: string;
  filename?: string;
  signal?: AbortSignal;
  /**
   * Time budget of the whole call: every attempt and every wait between retries (for
   * `dualWriteBody`, every image). When it runs out the pending request is aborted and the
   * failure is an `APIConnectionTimeoutError` in `error`. Default: none (the client's
   * per-attempt timeout and retries apply).
   */
  timeoutMs?: number;
  maxRetries?: number;
  /** Told about every failure (the result carries it too). */
  onError?: (error: unknown, input: { legacyUrl: string }) => void;
}

function notify(hook: DualWriteOptions['onError'], error: unknown, legacyUrl: string): void {
  if (!hook) return;
  try {
    hook(error, { legacyUrl });
  } catch {
    // A broken hook must not turn a reported failure into a thrown one.
  }
}

/**
 * One timer for a whole dual-write — attempts, backoff waits, queued images — linked to the
 * caller's signal. The client's own `timeoutMs` is per attempt and its retries come on top, so a
 * per-attempt value alone would let an ingest take (retries + 1) × timeout plus the backoff.
 */
class Deadline {
  readonly signal: AbortSignal;
  expired = false;
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly onAbort: () => void;

  constructor(
    readonly budgetMs: number | undefined,
    private readonly callerSignal: AbortSignal | undefined,
  ) {
    this.signal = this.controller.signal;
    this.onAbort = () => this.controller.abort(callerSignal?.reason);
    if (callerSignal?.aborted) this.onAbort();
    else callerSignal?.addEventListener('abort', this.onAbort, { once: true });
    if (budgetMs !== undefined && budgetMs > 0 && Number.isFinite(budgetMs)) {
      this.timer = setTimeout(() => {
        this.expired = true;
        this.controller.abort(this.timeoutError());
      }, budgetMs);
    }
  }

  /** What a failure becomes once the budget ran out (the client reports the abort it caused). */
  explain(error: unknown): unknown {
    if (!this.expired || this.callerSignal?.aborted) return error;
    return this.timeoutError(error);
  }

  done(): void {
    clearTimeout(this.timer);
    this.callerSignal?.removeEventListener('abort', this.onAbort);
  }

  private timeoutError(cause?: unknown): APIConnectionTimeoutError {
    return new APIConnectionTimeoutError(`Dual-write gave up after its ${this.budgetMs} ms budget.`, { cause });
  }
}

/**
 * Ingests what llm-api receives today — a `data:` URL or an http(s) URL — and returns both the
 * `jan_` reference and the original. Never throws: failures come back in `error`.
 */
export async function dualWriteIngest(
  client: MediaClient,
  input: string,
  options: DualWriteOptions = {},
): Promise<DualWriteResult> {
  const deadline = new Deadline(options.timeoutMs, options.signal);
  try {
    return await ingestWithin(client, input, options, deadline);
  } finally {
    deadline.done();
  }
}

async function ingestWithin(
  client: MediaClient,
  input: string,
  options: DualWriteOptions,
  deadline: Deadline,
  legacyUrl: string = input,
): Promise<DualWriteResult> {
  try {
    const existing = parsePlaceholder(input);
    if (existing) return { ref: `data:${existing.mime};${existing.id}`, id: existing.id, legacyUrl };
    const trimmed = input.trim();
    const requestOptions: RequestOptions = {
      userId: options.userId,
      signal: deadline.signal,
      // No attempt may outlast the whole budget; the deadline's signal also cuts retries short.
      timeoutMs: options.timeoutMs,
      maxRetries: options.maxRetries,
    };
    const params = options.filename ? { filename: options.filename } : {};
    let object;
    if (/^data:/i.test(trimmed)) object = await client.media.ingestDataUrl(trimmed, params, requestOptions);
    else if (/^https?:\/\//i.test(trimmed)) object = await client.media.ingestRemoteUrl(trimmed, params, requestOptions);
    else throw new MediaClientError('dual-write input is neither a data: URL nor an http(s) URL');
    return { ref: `data:${object.mime};${object.id}`, id: object.id, legacyUrl, deduped: object.deduped };
  } catch (caught) {
    const error = deadline.explain(caught);
    notify(options.onError, error, legacyUrl);
    return { ref: null, id: null, legacyUrl, error };
  }
}

export interface DualWriteBodyResult<T> {
  /**
   * The body with every successfully ingested image replaced, at its path, by its
   * `data:<mime>;jan_<id>` reference (an Anthropic-style base64 block keeps its shape, with the
   * reference in `source.data`, a Gemini `inline_data` part likewise in `data`: `resolveForProvider`
   * turns them back into valid ones).
   */
  body: T;
  /** The body as received (same object), for replay or rollback. */
  legacyBody: T;
  /**
   * One entry per image position that does not already hold a `jan_` reference — the image
   * positions `findCutoverViolations` reports — with its JSON path. A value that is neither an
   * image nor a URL is listed with `ref: null` and an `error`, without a call.
   */
  images: Array<DualWriteResult & { path: string }>;
}

/**
 * {@link dualWriteIngest} over every image of a chat body — OpenAI chat and Responses shapes,
 * Anthropic-style `{ type: 'image', source }` blocks, base64 ones included, and Gemini `inline_data`
 * image parts (at most `concurrency`
 * at a time), all within one `timeoutMs` budget. Never throws; images that failed keep their
 * original value in `body`.
 */
export async function dualWriteBody<T>(
  client: MediaClient,
  body: T,
  options: DualWriteOptions & { concurrency?: number } = {},
): Promise<DualWriteBodyResult<T>> {
  const found: Array<{ path: PathSegment[]; value: string; input: string }> = [];
  try {
    visitStrings(body, (text, path, parents) => {
      const image = imageAt(text, path, parents);
      if (!image || image.kind === 'placeholder') return;
      // Bare base64 says nothing about its type: the block's media_type (the part's mime_type) does (the service sniffs
      // the bytes either way).
      const input = image.kind === 'base64' ? `data:${image.mediaType ?? ''};base64,${text.trim()}` : text;
      found.push({ path: [...path], value: text, input });
    });
  } catch (error) {
    notify(options.onError, error, '');
    return { body, legacyBody: body, images: [] };
  }
  const results: Array<DualWriteResult & { path: string }> = new Array(found.length);
  let next = 0;
  const deadline = new Deadline(options.timeoutMs, options.signal);
  const worker = async (): Promise<void> => {
    while (next < found.length) {
      const index = next++;
      const item = found[index]!;
      const result = await ingestWithin(client, item.input, options, deadline, item.value);
      results[index] = { ...result, path: formatPath(item.path) };
    }
  };
  const concurrency = Math.max(1, Math.min(options.concurrency ?? 4, found.length));
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    deadline.done();
  }
  const replacements = found.flatMap((item, i) => {
    const ref = results[i]!.ref;
    return ref ? [{ path: item.path, value: ref }] : [];
  });
  return { body: replaceAtPaths(body, replacements) as T, legacyBody: body, images: results };
}
