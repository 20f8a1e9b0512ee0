import { createInterface } from 'node:readline/promises';

/** A stream the CLI writes to; `isTTY` decides whether prompts and progress bars appear. */
export interface OutputStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/**
 * Everything the CLI touches outside itself, so `run()` can be driven in-process by unit tests
 * and by `main.ts` with the real process.
 */
export interface CliIO {
  stdout: OutputStream;
  stderr: OutputStream;
  env: Record<string, string | undefined>;
  /** True when a human can answer a prompt (stdin and stderr are terminals). */
  interactive: boolean;
  /** Asks a yes/no question; resolves `false` unless the answer starts with y. */
  confirm(question: string): Promise<boolean>;
  /** Transport for the SDK (tests inject one; default: global fetch). */
  fetch?: typeof fetch;
  /**
   * Calls `listener` on the next Ctrl-C (SIGINT) instead of ending the process.
   * The returned function removes it again, after which Ctrl-C ends the process as usual.
   */
  onInterrupt(listener: () => void): () => void;
}

/** The real process. */
export function processIO(): CliIO {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    interactive: !!process.stdin.isTTY && !!process.stderr.isTTY,
    async confirm(question) {
      // The prompt goes to stderr so stdout stays clean for whatever a pipe expects.
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      try {
        return isYes(await rl.question(question));
      } catch (error) {
        // Ctrl-C (or Ctrl-D) at the prompt is a "no", not a failure: nothing has been changed yet.
        if (isAbort(error)) {
          process.stderr.write('\n');
          return false;
        }
        throw error;
      } finally {
        rl.close();
      }
    },
    onInterrupt(listener) {
      const once = () => {
        process.removeListener('SIGINT', once);
        listener();
      };
      process.on('SIGINT', once);
      return () => process.removeListener('SIGINT', once);
    },
  };
}

function isAbort(error: unknown): boolean {
  return error instanceof Error && ((error as NodeJS.ErrnoException).code === 'ABORT_ERR' || error.name === 'AbortError');
}

export function isYes(answer: string): boolean {
  return /^\s*y(es)?\s*$/i.test(answer);
}
