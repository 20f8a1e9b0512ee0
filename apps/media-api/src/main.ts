import { applyV8Flags } from './v8-flags';
// Before anything allocates (see v8-flags.ts).
applyV8Flags();

import { resolve } from 'node:path';
import { createApp } from './bootstrap';
import { DirectoryInUseError } from '@jan/persistence';
import { ConfigError } from './config/media-config';
import { processEnv } from './config/env';
import { PrincipalResolver } from './auth/principal-resolver';

async function main(): Promise<void> {
  const running = await createApp(processEnv());
  const { app, config } = running;
  try {
    await app.listen({ port: config.port, host: config.host });
  } catch (error) {
    // The port is taken: release the database (and the data directory's lock) before exiting.
    await running.close().catch(() => undefined);
    throw error;
  }
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  // Ids, never the keys: each is the audit actor of what its key does (docs/operations.md).
  const principals = app.get(PrincipalResolver);
  const lines = [
    `Jan Media API listening on http://${config.host}:${port} (public URL ${config.publicUrl})`,
    `  database: ${running.database.engine === 'embedded' ? `embedded (${config.dataDir}/pglite)` : 'PostgreSQL'}; storage: ${config.storageBackend}`,
    `  OpenAPI: ${config.publicUrl}/docs`,
    `  service key ids: ${principals.serviceKeyIds.join(', ') || 'none'}`,
    `  admin key ids: ${principals.adminKeyIds.join(', ') || 'none'}`,
  ];
  if (running.generatedServiceKey) {
    lines.push(`  service key (generated, kept in ${config.dataDir}/secrets/service-key): ${running.generatedServiceKey}`);
    lines.push(`  try: curl -H 'X-Media-Service-Key: ${running.generatedServiceKey}' ${config.publicUrl}/readyz`);
  }
  process.stdout.write(lines.join('\n') + '\n');

  let stopping = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      running.close().then(
        () => process.exit(0),
        (error: unknown) => {
          process.stderr.write(`shutdown failed: ${error instanceof Error ? error.message : String(error)}\n`);
          process.exit(1);
        },
      );
    });
  }
}

// The build primes V8's code cache for the bundle by loading every module without starting
// (src/start.ts, JAN_MEDIA_CODE_CACHE_PRIME).
if (processEnv().JAN_MEDIA_CODE_CACHE_PRIME !== '1') main().catch((error: unknown) => {
  const known = startupConflict(error);
  if (error instanceof ConfigError || known) {
    process.stderr.write(`${known ?? (error as Error).message}\n`);
    process.exit(known ? EXIT_IN_USE : 78);
  }
  const disk = dataDirectoryProblem(error);
  if (disk) {
    process.stderr.write(`${disk}\n`);
    process.exit(EXIT_CANT_CREATE);
  }
  process.stderr.write(`failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});

/** sysexits' EX_CANTCREAT: the data directory cannot be written (full, read-only, not ours). */
const EXIT_CANT_CREATE = 73;

/** File-system errors that mean the disk, not the service: said in one line with the fix. */
const DISK_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EACCES', 'EPERM']);

function dataDirectoryProblem(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (!code || !DISK_ERRORS.has(code)) return undefined;
  const dataDir = resolve(processEnv().MEDIA_DATA_DIR ?? './.data');
  const firstLine = (error as Error).message.split('\n')[0];
  return `cannot write the data directory ${dataDir} (${firstLine}): free space or make it writable, or set MEDIA_DATA_DIR to another directory`;
}

/** sysexits' EX_TEMPFAIL: another process holds what this one needs; start again once it is gone. */
const EXIT_IN_USE = 75;

/**
 * The two ways a second copy of the service on one machine fails to start, said in one line with
 * the fix (a stack trace tells a new user nothing more); `undefined` for anything else.
 */
function startupConflict(error: unknown): string | undefined {
  if (error instanceof DirectoryInUseError) {
    return `${error.message}: another Jan Media API is running on this data directory; stop it, or start this one with another MEDIA_DATA_DIR`;
  }
  const listen = error as NodeJS.ErrnoException & { address?: string; port?: number };
  if (listen?.code === 'EADDRINUSE') {
    return `port ${listen.port ?? ''} on ${listen.address ?? 'this host'} is already in use; stop what listens there, or set MEDIA_API_PORT`;
  }
  return undefined;
}
