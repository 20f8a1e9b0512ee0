/** A scripted `fetch` for unit tests: records every request, answers from a handler, opens no socket. */
export interface RecordedRequest {
  url: URL;
  method: string;
  headers: Headers;
  /** The body as bytes (streams are drained), or undefined. */
  body: Uint8Array | undefined;
  bodyText: string;
  init: RequestInit & { duplex?: string };
}

export type Handler = (request: RecordedRequest, index: number) => Response | Promise<Response>;

export interface FakeFetch {
  fetch: typeof fetch;
  calls: RecordedRequest[];
}

export function fakeFetch(handler: Handler | Handler[]): FakeFetch {
  const calls: RecordedRequest[] = [];
  const impl = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const body = init.body != null ? new Uint8Array(await new Response(init.body).arrayBuffer()) : undefined;
    const request: RecordedRequest = {
      url,
      method: init.method ?? 'GET',
      headers: new Headers(init.headers),
      body,
      bodyText: body ? new TextDecoder().decode(body) : '',
      init,
    };
    const index = calls.length;
    calls.push(request);
    const h = Array.isArray(handler) ? handler[Math.min(index, handler.length - 1)]! : handler;
    return h(request, index);
  };
  return { fetch: impl as typeof fetch, calls };
}

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

export function noContent(): Response {
  return new Response(null, { status: 204 });
}

/** Never answers; rejects with the signal's reason when it aborts (what real fetch does). */
export function hang(request: RecordedRequest): Promise<Response> {
  return new Promise((_, reject) => {
    const signal = request.init.signal;
    if (!signal) return;
    if (signal.aborted) return reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/** Records requested waits and returns at once, so retry schedules are checked without waiting. */
export function fakeSleep(): { sleep: (ms: number, signal?: AbortSignal) => Promise<void>; waits: number[] } {
  const waits: number[] = [];
  return {
    waits,
    sleep: async (ms, signal) => {
      if (signal?.aborted) throw signal.reason;
      waits.push(ms);
    },
  };
}

export const MEDIA_OBJECT = {
  id: 'jan_01hqr8v9k2x3f4g5h6j7k8m9n0',
  mime: 'image/png',
  bytes: 68,
  sha256: 'a'.repeat(64),
  deduped: false,
  url: 'http://127.0.0.1:8285/v1/media/jan_01hqr8v9k2x3f4g5h6j7k8m9n0',
  presigned_url: 'http://127.0.0.1:8285/v1/media/jan_01hqr8v9k2x3f4g5h6j7k8m9n0?sig=x',
  expires_in: 300,
};

export const BASE_URL = 'http://127.0.0.1:8285';
