import type { CliIO, OutputName, OutputStream, StopSignal } from '../io';
import { run } from '../program';

export const BASE_URL = 'http://127.0.0.1:8285';
export const ID = 'jan_01hqr8v9k2x3f4g5h6j7k8m9n0';

export interface RecordedRequest {
  method: string;
  url: URL;
  headers: Headers;
  json: any;
}

export type Handler = (request: RecordedRequest) => Response | Promise<Response>;

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
}

export class MemoryStream implements OutputStream {
  text = '';
  /** Its reader went away: later writes are lost, as on a closed pipe. */
  closed = false;
  constructor(
    public isTTY = false,
    public columns = 100,
  ) {}
  write(chunk: string): boolean {
    if (this.closed) return false;
    this.text += chunk;
    return true;
  }
  // cli-progress calls these on a TTY stream.
  cursorTo(): boolean {
    return true;
  }
  clearLine(): boolean {
    return true;
  }
  moveCursor(): boolean {
    return true;
  }
  on(): this {
    return this;
  }
  removeListener(): this {
    return this;
  }
}

export interface Harness {
  requests: RecordedRequest[];
  stdout: MemoryStream;
  stderr: MemoryStream;
  questions: string[];
  /** Ctrl-C (or `signal`): calls what the CLI registered with `onInterrupt`; false when nothing listened. */
  interrupt(signal?: StopSignal): boolean;
  /** The reader of `stream` goes away: it takes no more output, and what listens with `onBrokenPipe` is told; false when nothing listened. */
  closePipe(stream: OutputName): boolean;
  run(...argv: string[]): Promise<number>;
}

/** Runs the CLI in-process against a scripted fetch, recording every request. */
export function harness(
  handler: Handler,
  options: { env?: Record<string, string>; interactive?: boolean; answer?: string; ttyStderr?: boolean } = {},
): Harness {
  const requests: RecordedRequest[] = [];
  const stdout = new MemoryStream();
  const stderr = new MemoryStream(options.ttyStderr ?? false);
  const questions: string[] = [];
  const interruptListeners = new Set<(signal: StopSignal) => void>();
  const pipeListeners = new Set<(stream: OutputName) => void>();
  const fetchImpl = (async (input: string | URL | Request, init: RequestInit = {}) => {
    const body = typeof init.body === 'string' ? init.body : init.body ? await new Response(init.body).text() : '';
    const request: RecordedRequest = {
      method: init.method ?? 'GET',
      url: new URL(String(input)),
      headers: new Headers(init.headers),
      json: body ? JSON.parse(body) : undefined,
    };
    requests.push(request);
    return handler(request);
  }) as typeof fetch;
  const io: CliIO = {
    stdout,
    stderr,
    env: { MEDIA_API_URL: BASE_URL, MEDIA_ADMIN_KEY: 'admin-key', ...options.env },
    interactive: options.interactive ?? false,
    async confirm(question) {
      questions.push(question);
      return /^y/i.test(options.answer ?? '');
    },
    fetch: fetchImpl,
    onInterrupt(listener) {
      interruptListeners.add(listener);
      return () => interruptListeners.delete(listener);
    },
    onBrokenPipe(listener) {
      pipeListeners.add(listener);
      return () => pipeListeners.delete(listener);
    },
  };
  const interrupt = (signal: StopSignal = 'SIGINT') => {
    const listeners = [...interruptListeners];
    interruptListeners.clear();
    for (const listener of listeners) listener(signal);
    return listeners.length > 0;
  };
  const closePipe = (stream: OutputName) => {
    (stream === 'stdout' ? stdout : stderr).closed = true;
    for (const listener of [...pipeListeners]) listener(stream);
    return pipeListeners.size > 0;
  };
  return { requests, stdout, stderr, questions, interrupt, closePipe, run: (...argv) => run(argv, io) };
}
