'use strict';
// Runs the embedded engine on its own thread: PGlite executes queries synchronously in
// WebAssembly, and here that work does not stall the service's event loop. It also keeps
// PGlite's dynamic `import()` calls out of Jest's module sandbox. Plain CommonJS, so that Node
// can start it from `src/` (tests) and `dist/` (the build) alike.
const { parentPort, workerData } = require('node:worker_threads');
const { PGlite } = require('@electric-sql/pglite');
const { PGLiteSocketServer } = require('@electric-sql/pglite-socket');

async function main() {
  const started = performance.now();
  const db = await PGlite.create(workerData.directory);
  const server = new PGLiteSocketServer({
    db,
    host: '127.0.0.1',
    port: 0,
    maxConnections: workerData.maxConnections,
  });
  await server.start();
  const port = Number(server.getServerConn().split(':').pop());
  parentPort.postMessage({ type: 'ready', port, openMs: performance.now() - started });

  parentPort.once('message', async (message) => {
    if (message.type !== 'stop') return;
    try {
      await server.stop();
      await db.close();
      parentPort.postMessage({ type: 'stopped' });
    } catch (error) {
      parentPort.postMessage({ type: 'failed', message: describe(error) });
    }
  });
}

function describe(error) {
  return error instanceof Error ? error.stack || error.message : String(error);
}

main().catch((error) => parentPort.postMessage({ type: 'failed', message: describe(error) }));
