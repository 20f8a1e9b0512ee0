import { applyV8Flags } from './v8-flags';
// Before anything allocates (see v8-flags.ts).
applyV8Flags();

import { createApp } from './bootstrap';
import { ConfigError } from './config/media-config';
import { processEnv } from './config/env';
import { PrincipalResolver } from './auth/principal-resolver';

async function main(): Promise<void> {
  const running = await createApp(processEnv());
  const { app, config } = running;
  await app.listen({ port: config.port, host: config.host });
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
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(78);
  }
  process.stderr.write(`failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
