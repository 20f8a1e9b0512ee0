import { CliError, ExitCode, UsageError } from './exit-codes';

/** The options every `jan` command accepts (declared once on the root program). */
export interface GlobalOptions {
  url?: string;
  adminKey?: string;
  token?: string;
  json?: boolean;
  timeout?: number;
  retries?: number;
}

/** Where the service is and which admin credential to send. */
export interface ConnectionConfig {
  baseURL: string;
  /** Sent as `X-Media-Admin-Key`. */
  adminKey?: string;
  /** Sent as `Authorization: Bearer …` (a JWT carrying the admin role). */
  bearerToken?: string;
  timeoutMs?: number;
  maxRetries?: number;
}

/**
 * Flags win over the environment. One credential is used: an explicit flag, else
 * `MEDIA_ADMIN_KEY`, else `MEDIA_ADMIN_TOKEN` — so a token passed on the command line is never
 * overridden by a key left in the shell.
 */
export function resolveConnection(options: GlobalOptions, env: Record<string, string | undefined>): ConnectionConfig {
  const url = nonEmpty(options.url) ?? nonEmpty(env['MEDIA_API_URL']);
  if (!url) throw new UsageError('no service URL: set MEDIA_API_URL or pass --url <url>');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`not a valid URL: ${url}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new UsageError(`the service URL must be http(s): ${url}`);
  }

  const flagKey = nonEmpty(options.adminKey);
  const flagToken = nonEmpty(options.token);
  if (flagKey && flagToken) throw new UsageError('pass either --admin-key or --token, not both');
  let adminKey: string | undefined;
  let bearerToken: string | undefined;
  if (flagKey) adminKey = flagKey;
  else if (flagToken) bearerToken = flagToken;
  else if (nonEmpty(env['MEDIA_ADMIN_KEY'])) adminKey = nonEmpty(env['MEDIA_ADMIN_KEY']);
  else if (nonEmpty(env['MEDIA_ADMIN_TOKEN'])) bearerToken = nonEmpty(env['MEDIA_ADMIN_TOKEN']);
  else {
    throw new CliError(
      'no admin credential: set MEDIA_ADMIN_KEY (or MEDIA_ADMIN_TOKEN), or pass --admin-key / --token',
      ExitCode.Auth,
      'missing_credentials',
    );
  }
  return {
    baseURL: url,
    adminKey,
    bearerToken,
    timeoutMs: options.timeout !== undefined ? options.timeout * 1000 : undefined,
    maxRetries: options.retries,
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed ? trimmed : undefined;
}
