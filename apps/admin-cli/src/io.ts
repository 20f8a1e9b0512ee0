import { createInterface } from 'node:readline/promises';
import { ExitCode } from './exit-codes';

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
   * Calls `listener` on the next Ctrl-C (SIGINT), SIGTERM or SIGHUP instead of ending the process. The
   * returned function removes it again; so does the first signal, after which a second one ends the
   * process as usual.
   */
  onInterrupt(listener: (signal: StopSignal) => void): () => void;
  /**
   * Calls `listener` when the reader of stdout or stderr has gone away (a write failed with EPIPE)
   * instead of ending the process at once with 141, until the returned function is called. `purge
   * --yes` uses it so that a closed pipe stops it cleanly and its report is not lost.
   */
  onBrokenPipe(listener: (stream: OutputName) => void): () => void;
}

export type OutputName = 'stdout' | 'stderr';

/**
 * The signals that ask `purge --yes` to stop after the batch in flight. SIGHUP (the terminal was
 * closed) is one of them: Node does not keep the SIGHUP that `nohup` ignores (it resets signals at
 * start-up), so without a listener a hang-up would kill a purge mid-way, even under `nohup`.
 */
export type StopSignal = 'SIGINT' | 'SIGTERM' | 'SIGHUP';
const STOP_SIGNALS: readonly StopSignal[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** Who handles a closed pipe instead of {@link endQuietlyOnBrokenPipe}'s exit (see `onBrokenPipe`). */
let brokenPipeListener: ((stream: OutputName) => void) | undefined;

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
      const stopListening = () => {
        for (const signal of STOP_SIGNALS) process.removeListener(signal, once);
      };
      const once = (signal: StopSignal) => {
        stopListening();
        listener(signal);
      };
      for (const signal of STOP_SIGNALS) process.on(signal, once);
      return stopListening;
    },
    onBrokenPipe(listener) {
      brokenPipeListener = listener;
      return () => {
        if (brokenPipeListener === listener) brokenPipeListener = undefined;
      };
    },
  };
}

/**
 * `jan media ls | head`: once the reader has gone, a write fails with EPIPE. Node ignores SIGPIPE
 * and would print the error's stack; the CLI ends at once and silently instead, with the status of
 * a process killed by SIGPIPE (141), as `cat`, `grep` or `seq` do. Nothing could be shown anyway.
 * While `purge --yes` deletes, it is told instead (`onBrokenPipe`): ending mid-purge would lose
 * the report of what was deleted. The stream that failed drops whatever is written to it later.
 */
export function endQuietlyOnBrokenPipe(): void {
  for (const [name, stream] of [['stdout', process.stdout], ['stderr', process.stderr]] as const) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') {
        if (brokenPipeListener) brokenPipeListener(name);
        else process.exit(ExitCode.BrokenPipe);
        return;
      }
      // The terminal was closed (SIGHUP follows): writes to it fail with EIO. Nothing can be shown
      // there any more, so that output is dropped rather than crashing the CLI, and a purge still
      // stops after the batch in flight; a redirected stream still gets its output.
      if (error.code === 'EIO') return;
      throw error;
    });
  }
}

function isAbort(error: unknown): boolean {
  return error instanceof Error && ((error as NodeJS.ErrnoException).code === 'ABORT_ERR' || error.name === 'AbortError');
}

export function isYes(answer: string): boolean {
  return /^\s*y(es)?\s*$/i.test(answer);
}
