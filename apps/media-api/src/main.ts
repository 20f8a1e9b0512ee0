import { setFlagsFromString } from 'node:v8';
// Before anything allocates. V8 "pretenures" allocation sites whose objects often survive a young
// GC, allocating them straight into the old generation. Under concurrent uploads the JSON parser's
// strings (a 64 KiB image is an 87 KB data URL) qualified, so every body went to the old generation
// and it grew by ~40 MB/s until a full GC: peak RSS under the ingest benchmark was 310-380 MB with
// pretenuring and 240-260 MB without. It costs new-upload throughput (fewer large strings copied
// per young GC with pretenuring); the memory target decides (docs/performance.md).
setFlagsFromString('--no-allocation-site-pretenuring');

import { createApp } from './bootstrap';
import { ConfigError } from './config/media-config';
import { processEnv } from './config/env';

async function main(): Promise<void> {
  const running = await createApp(processEnv());
  const { app, config } = running;
  await app.listen({ port: config.port, host: config.host });
  const address = app.getHttpServer().address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const lines = [
    `Jan Media API listening on http://${config.host}:${port} (public URL ${config.publicUrl})`,
    `  database: ${running.database.engine === 'embedded' ? `embedded (${config.dataDir}/pglite)` : 'PostgreSQL'}; storage: ${config.storageBackend}`,
    `  OpenAPI: ${config.publicUrl}/docs`,
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

main().catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    process.exit(78);
  }
  process.stderr.write(`failed to start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
