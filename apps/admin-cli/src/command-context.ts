import type { Command } from 'commander';
import type { MediaClient } from '@jan/media-client';
import type { GlobalOptions } from './config';
import type { CliIO } from './io';

/** What each command gets: the process around it and a client built from the global options. */
export interface CommandContext {
  io: CliIO;
  globals(command: Command): GlobalOptions;
  /** A client for the admin endpoints; throws a usage/auth CliError when configuration is missing. */
  client(command: Command): MediaClient;
  /** `--json` prints `json` on stdout; otherwise `human()` is printed. */
  output(command: Command, json: unknown, human: () => string): void;
  /** A note for humans on stderr (suppressed with --json, which keeps stderr for errors). */
  note(command: Command, text: string): void;
}
