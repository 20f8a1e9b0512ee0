import { Command, CommanderError } from 'commander';
import { MediaClient, NotFoundError, type Usage } from '@jan/media-client';
import { nonNegativeInt, positiveInt } from './arguments';
import type { CommandContext } from './command-context';
import { registerDescribeCommand } from './commands/describe.command';
import { registerLsCommand } from './commands/ls.command';
import { registerPurgeCommand } from './commands/purge.command';
import { registerReissueCommand } from './commands/reissue.command';
import { registerUsageCommand } from './commands/usage.command';
import { resolveConnection, type ConnectionConfig, type GlobalOptions } from './config';
import { CliError, errorReport, ExitCode, exitCodeFor, messageOf, UsageError } from './exit-codes';
import type { CliIO } from './io';
import { VERSION } from './version';

export const EXIT_CODES_HELP = `
Exit codes:
  0    success
  1    unexpected error
  2    usage: bad arguments or configuration, or the service refused the request as invalid
  3    not found: the object (or one of the named ids) does not exist
  4    auth: missing, wrong or insufficient admin credentials (a token without the admin role)
  5    server: the service failed, rate-limited us, or could not be reached
  6    cancelled at the confirmation prompt (nothing changed)
  129  hung up (SIGHUP: the terminal was closed) during purge --yes: as 130
  130  interrupted (Ctrl-C) during purge --yes: what was deleted is reported; the rest was not
       (before deleting starts, SIGHUP, SIGINT and SIGTERM end it at once: nothing deleted)
  141  the reader of the output went away (jan media ls | head): ended quietly, as on SIGPIPE;
       purge --yes stops after the batch in flight and reports what it deleted on stderr
  143  terminated (SIGTERM) during purge --yes: as 130

Environment:
  MEDIA_API_URL      service root, e.g. http://localhost:8285 (or --url)
  MEDIA_ADMIN_KEY    admin key, sent as X-Media-Admin-Key (or --admin-key)
  MEDIA_ADMIN_TOKEN  admin JWT, sent as Authorization: Bearer (or --token)
`;

/**
 * Builds the `jan` command tree. Nothing here reads the process: `io` carries it all. With
 * `json`, Commander's own messages (argument errors, the help shown after them) are held back, so
 * that `run` can report the failure as the one line of JSON `--json` promises.
 */
export function createProgram(io: CliIO, { json = false }: { json?: boolean } = {}): Command {
  const program = new Command('jan');
  program
    .description('Operator commands for the Jan Media API (through its admin endpoints; no database access needed).')
    .version(VERSION, '-V, --version')
    .option('--url <url>', 'service root URL (env MEDIA_API_URL)')
    .option('--admin-key <key>', 'admin key, sent as X-Media-Admin-Key (env MEDIA_ADMIN_KEY)')
    .option('--token <jwt>', 'admin bearer token (env MEDIA_ADMIN_TOKEN)')
    .option('--json', 'machine-readable JSON on stdout (errors as JSON on stderr)')
    .option('--timeout <seconds>', 'per-request timeout in seconds (default 30)', positiveInt('--timeout', 3600))
    .option('--retries <n>', 'retries of failed safe requests (default 2)', nonNegativeInt('--retries', 10))
    .configureHelp({ showGlobalOptions: true, sortSubcommands: false })
    .showHelpAfterError('(add --help for usage)')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => {
        if (!json) io.stderr.write(text);
      },
    })
    .addHelpText('after', EXIT_CODES_HELP);

  const context: CommandContext = {
    io,
    globals: (command) => command.optsWithGlobals<GlobalOptions>(),
    client(command) {
      return clientFor(resolveConnection(command.optsWithGlobals<GlobalOptions>(), io.env), io);
    },
    output(command, json, human) {
      if (command.optsWithGlobals<GlobalOptions>().json) io.stdout.write(JSON.stringify(json, null, 2) + '\n');
      else io.stdout.write(human());
    },
    note(command, text) {
      if (!command.optsWithGlobals<GlobalOptions>().json) io.stderr.write(text.endsWith('\n') ? text : text + '\n');
    },
  };

  const media = program
    .command('media')
    .description('Inspect and manage stored media: describe, purge, reissue, ls, usage.')
    .addHelpText('after', EXIT_CODES_HELP);
  registerDescribeCommand(media, context);
  registerPurgeCommand(media, context);
  registerReissueCommand(media, context);
  registerLsCommand(media, context);
  registerUsageCommand(media, context);
  return program;
}

function clientFor(connection: ConnectionConfig, io: CliIO): MediaClient {
  return new MediaClient({
    baseURL: connection.baseURL,
    adminKey: connection.adminKey,
    bearerToken: connection.bearerToken,
    timeoutMs: connection.timeoutMs,
    maxRetries: connection.maxRetries,
    fetch: io.fetch,
    // Only admin credentials: a service key lying around in MEDIA_API_KEY must not be sent.
    env: {},
    propagator: false,
  });
}

/**
 * The service answers an authenticated non-admin on an admin endpoint with the 404 of an unknown
 * route, so a wrong `--url` and a token without the admin role look alike. One more request tells
 * them apart: `GET /v1/usage` with the same token answers any authenticated caller with its usage
 * (`objects`, `bytes`), and 404s, or answers something else, where the URL is wrong (another
 * service may have a /v1/usage of its own). (An admin key that is not one is refused with 401 and
 * never gets here.)
 */
async function notAnAdmin(error: unknown, program: Command, io: CliIO): Promise<CliError | undefined> {
  if (!(error instanceof NotFoundError) || error.code !== 'route_not_found') return undefined;
  let connection: ConnectionConfig;
  try {
    connection = resolveConnection(program.opts<GlobalOptions>(), io.env);
  } catch {
    return undefined;
  }
  if (!connection.bearerToken) return undefined;
  try {
    const usage = (await clientFor(connection, io).usage.retrieve()) as Partial<Usage> | null;
    if (typeof usage?.objects !== 'number' || typeof usage.bytes !== 'number') return undefined;
  } catch {
    return undefined;
  }
  return new CliError(
    "the token is valid but not an admin's: it needs the service's admin role (AUTH_ADMIN_ROLE, default media-admin)",
    ExitCode.Auth,
    'not_admin',
  );
}

/** Runs `jan` with `argv` (without node and script) and resolves the exit code. */
export async function run(argv: readonly string[], io: CliIO): Promise<number> {
  // Known before parsing: an argument error stops Commander before it has read the option. After
  // `--`, a `--json` is an argument, not the option.
  const end = argv.indexOf('--');
  const wantsJson = (end === -1 ? argv : argv.slice(0, end)).includes('--json');
  const program = createProgram(io, { json: wantsJson });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return ExitCode.Ok;
  } catch (thrown) {
    const error = (await notAnAdmin(thrown, program, io)) ?? thrown;
    if (error instanceof CommanderError) {
      // Commander has already printed help or the version; or, without --json, its own error message.
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return ExitCode.Ok;
      if (wantsJson) io.stderr.write(JSON.stringify(errorReport(new UsageError(usageMessageOf(error)))) + '\n');
      return ExitCode.Usage;
    }
    if (wantsJson || program.opts<GlobalOptions>().json) {
      io.stderr.write(JSON.stringify(errorReport(error)) + '\n');
    } else {
      const report = errorReport(error);
      const requestId = report.request_id ? ` (request id ${report.request_id})` : '';
      io.stderr.write(`error: ${messageOf(error)}${requestId}\n`);
    }
    return exitCodeFor(error);
  }
}

/** Commander's message without its `error: ` prefix; a command called without a subcommand shows help, and says so. */
function usageMessageOf(error: CommanderError): string {
  if (error.code === 'commander.help') return 'a command is required (add --help for usage)';
  return error.message.replace(/^error:\s*/, '');
}
