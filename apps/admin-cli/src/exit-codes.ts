import {
  APIConnectionError,
  APIError,
  APIUserAbortError,
  AuthenticationError,
  BadRequestError,
  NotFoundError,
  PermissionDeniedError,
  UnprocessableEntityError,
} from '@jan/media-client';

/**
 * Process exit codes of `jan`. Scripts branch on these, so they are part of the interface:
 * never renumber, only add.
 */
export const ExitCode = {
  Ok: 0,
  /** A bug or an answer the CLI does not understand. */
  Unexpected: 1,
  /** Bad arguments or configuration, or a request the service refused as invalid (400/422). */
  Usage: 2,
  /** The object (or an explicitly named id) does not exist, or is not visible to this credential. */
  NotFound: 3,
  /** Missing, wrong or insufficient credentials (401/403). */
  Auth: 4,
  /** The service failed (5xx, 429) or could not be reached (connection refused, timeout). */
  Server: 5,
  /** The operator answered "no" at a confirmation prompt; nothing was changed. */
  Cancelled: 6,
  /**
   * SIGHUP (the terminal was closed) during `purge --yes`: as {@link Interrupted}; the report goes to
   * stdout/stderr only where they were redirected (the terminal is gone). 128 + SIGHUP.
   */
  HangUp: 129,
  /**
   * Ctrl-C (SIGINT) during `purge --yes`: the batch in flight was finished, nothing after it was
   * started; the report lists exactly what was deleted. 128 + SIGINT, as shells report it.
   */
  Interrupted: 130,
  /**
   * Whoever read stdout (or stderr) went away (`jan media ls | head`): the CLI ends quietly, as a
   * process killed by SIGPIPE does; 128 + SIGPIPE, as shells report it (`set -o pipefail` sees it).
   * During `purge --yes` it stops after the batch in flight and reports what it deleted on the
   * stream that is still open (stderr when stdout closed).
   */
  BrokenPipe: 141,
  /** SIGTERM (`timeout`, a CI runner, Kubernetes) during `purge --yes`: as {@link Interrupted}. 128 + SIGTERM. */
  Terminated: 143,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** A failure the CLI detected itself, with the exit code it should end with. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    readonly code = 'cli_error',
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/**
 * `purge --yes` lost the reader of its output: the report (`report`) of what it deleted goes to
 * stderr (with `--json`, inside the error's JSON) when stdout is the stream that closed.
 */
export class BrokenPipeError extends CliError {
  constructor(
    readonly stream: 'stdout' | 'stderr',
    readonly report: object,
  ) {
    super(
      stream === 'stdout' ? 'the reader of stdout went away: the report above is on stderr instead' : 'the reader of stderr went away',
      ExitCode.BrokenPipe,
      'broken_pipe',
    );
    this.name = 'BrokenPipeError';
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(message, ExitCode.Usage, 'usage');
  }
}

/**
 * A 200 whose JSON is not what the admin endpoint answers (another service behind `--url`, say)
 * is an answer the CLI does not understand: exit 1 with code `unexpected`, never a made-up result.
 */
export function understood<T>(answer: T, ok: (answer: T) => boolean, endpoint: string): T {
  if (typeof answer !== 'object' || answer === null || !ok(answer)) throw unexpectedAnswer(endpoint);
  return answer;
}

export function unexpectedAnswer(endpoint: string): CliError {
  return new CliError(`unexpected answer from ${endpoint}: is --url (MEDIA_API_URL) this service's base URL?`, ExitCode.Unexpected, 'unexpected');
}

/** Maps anything thrown by a command to the exit code that describes it. */
export function exitCodeFor(error: unknown): ExitCode {
  if (error instanceof CliError) return error.exitCode;
  // No such route: the URL is wrong (--url, MEDIA_API_URL), not the object missing. A script that
  // takes 3 from `purge` for "already gone" must not take a misconfiguration for it.
  if (error instanceof NotFoundError && error.code === 'route_not_found') return ExitCode.Usage;
  if (error instanceof NotFoundError) return ExitCode.NotFound;
  if (error instanceof AuthenticationError || error instanceof PermissionDeniedError) return ExitCode.Auth;
  if (error instanceof BadRequestError || error instanceof UnprocessableEntityError) return ExitCode.Usage;
  if (error instanceof APIError) return error.status === 429 || error.status >= 500 ? ExitCode.Server : ExitCode.Unexpected;
  if (error instanceof APIConnectionError) return ExitCode.Server;
  if (error instanceof APIUserAbortError) return ExitCode.Cancelled;
  return ExitCode.Unexpected;
}

/** What `--json` prints on stderr for a failure: stable fields a script can read. */
export function errorReport(error: unknown): {
  error: string;
  code: string;
  status?: number;
  request_id?: string;
  exit_code: ExitCode;
  report?: object;
} {
  const exit_code = exitCodeFor(error);
  if (error instanceof APIError) {
    return {
      error: messageOf(error),
      code: error.code ?? `http_${error.status}`,
      status: error.status,
      ...(error.requestId ? { request_id: error.requestId } : {}),
      exit_code,
    };
  }
  if (error instanceof BrokenPipeError) {
    return { error: 'the reader of stdout went away: the purge report is in "report"', code: error.code, exit_code, report: error.report };
  }
  if (error instanceof CliError) return { error: error.message, code: error.code, exit_code };
  if (error instanceof APIConnectionError) return { error: messageOf(error), code: 'connection_error', exit_code };
  return { error: messageOf(error), code: 'unexpected', exit_code };
}

/** The human text of an error, without the SDK's leading status number. */
export function messageOf(error: unknown): string {
  if (error instanceof NotFoundError && error.code === 'route_not_found') {
    return 'the service has no such route: check --url (or MEDIA_API_URL); it is the service\'s base URL, e.g. https://media.example.com';
  }
  if (error instanceof APIError) {
    const body = error.body;
    if (typeof body === 'object' && body !== null && typeof body.error === 'string') return body.error;
    return error.message;
  }
  if (error instanceof Error) return error.message;
  return String(error);
}
