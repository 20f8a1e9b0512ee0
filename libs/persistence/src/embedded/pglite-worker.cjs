'use strict';
// Runs the embedded engine on its own thread: PGlite executes queries synchronously in
// WebAssembly, and here that work does not stall the service's event loop. It also keeps
// PGlite's dynamic `import()` calls out of Jest's module sandbox. Plain CommonJS, so that Node
// can start it from `src/` (tests) and `dist/` (the build) alike.
//
// Started as a child process instead (`node pglite-worker.cjs <directory>`), it only creates a new
// directory (initdb) and exits: see createCluster in embedded-server.ts.
const { isMainThread, parentPort, workerData } = require('node:worker_threads');
const { PGlite } = require('@electric-sql/pglite');
const { PGLiteSocketServer } = require('@electric-sql/pglite-socket');

// PGlite's own start parameters, with a smaller buffer pool: its default of 128 MB is resident
// as soon as the engine opens, and the service's metadata stays far smaller.
const START_PARAMS = [...PGlite.defaultStartParams, '-c', 'shared_buffers=32MB'];

async function create(directory) {
  const started = performance.now();
  const db = await PGlite.create(directory, { startParams: START_PARAMS });
  await db.close();
  return performance.now() - started;
}

async function main() {
  const started = performance.now();
  const db = await PGlite.create(workerData.directory, { startParams: START_PARAMS });
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

if (isMainThread) {
  const reply = (message, code) => process.send(message, () => process.exit(code));
  create(process.argv[2]).then(
    (createMs) => reply({ type: 'created', createMs }, 0),
    (error) => reply({ type: 'failed', message: describe(error) }, 1),
  );
} else {
  main().catch((error) => parentPort.postMessage({ type: 'failed', message: describe(error) }));
}
