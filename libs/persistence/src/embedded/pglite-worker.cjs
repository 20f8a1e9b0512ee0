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
  keepQueriesTogether(server.queryQueue);
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
      parentPort.postMessage(failure(error));
    }
  });
}

/** Sync, simple Query, Terminate, and a startup packet (no type byte: its length's high byte, 0). */
const ENDS_QUERY = new Set([0x53, 0x51, 0x58, 0x00]);

/**
 * PGlite has one session; `PGLiteSocketServer` (0.2.17) queues the connections' protocol messages
 * one by one and, outside an explicit transaction, runs the next one from whichever connection
 * sent it first. But a query in the extended protocol is several messages (Parse, Bind, Describe,
 * Execute, Sync) sharing the session's unnamed statement and portal. When another connection's
 * BEGIN got in between two of them, the rest waited behind that whole transaction, whose own
 * Parse replaced the unnamed statement: the query then failed ("unnamed prepared statement does
 * not exist"), and its connection could hang. Seen with concurrent quota-checked uploads, the one
 * path with explicit transactions.
 *
 * This replaces the queue's scheduler: a connection keeps the engine from the first message of a
 * query to its Sync, as the library already did from BEGIN to COMMIT. It also keeps going after a
 * message that failed in the engine, where the library stopped the queue for good.
 */
function keepQueriesTogether(queue) {
  let midQuery = false;
  queue.processQueue = async function processQueue() {
    if (this.processing || this.queue.length === 0) return;
    this.processing = true;
    try {
      while (this.queue.length > 0) {
        let item;
        if (this.lastHandlerId !== null && (midQuery || this.db.isInTransaction())) {
          const index = this.queue.findIndex((queued) => queued.handlerId === this.lastHandlerId);
          // The connection that holds the engine has not sent its next message yet: wait for it.
          if (index === -1) break;
          item = this.queue.splice(index, 1)[0];
        } else {
          item = this.queue.shift();
        }
        let bytes = 0;
        try {
          await this.db.runExclusive(() =>
            this.db.execProtocolRawStream(item.message, {
              onRawData: (data) => {
                bytes += data.length;
                item.onData(data);
              },
            }),
          );
        } catch (error) {
          midQuery = false;
          item.reject(error);
          continue;
        }
        this.lastHandlerId = item.handlerId;
        midQuery = !ENDS_QUERY.has(item.message[0]);
        item.resolve(bytes);
      }
    } finally {
      this.processing = false;
    }
  };
  // A connection that goes away mid-query releases the engine (the library rolls back its
  // transaction, if any), and whoever waited goes next.
  const clearTransactionIfNeeded = queue.clearTransactionIfNeeded.bind(queue);
  queue.clearTransactionIfNeeded = async function (handlerId) {
    if (this.lastHandlerId === handlerId) midQuery = false;
    await clearTransactionIfNeeded(handlerId);
    await this.processQueue();
  };
}

/**
 * PGlite's file-system layer throws Emscripten's `ErrnoError` (`{ name, errno }`, no message, not
 * an Error), whose errno numbers are Emscripten's own: named here, as Node names them, so a full
 * or read-only disk says so instead of `[object Object]`.
 */
const EMSCRIPTEN_ERRNO = { 2: 'EACCES', 19: 'EDQUOT', 29: 'EIO', 44: 'ENOENT', 51: 'ENOSPC', 63: 'EPERM', 69: 'EROFS' };
const ERRNO_TEXT = {
  EACCES: 'permission denied', EDQUOT: 'disk quota exceeded', EIO: 'input/output error', ENOENT: 'no such file or directory',
  ENOSPC: 'no space left on device', EPERM: 'operation not permitted', EROFS: 'read-only file system',
};

function codeOf(error) {
  if (error && typeof error.code === 'string') return error.code;
  if (error && error.name === 'ErrnoError') return EMSCRIPTEN_ERRNO[error.errno] ?? `errno ${error.errno}`;
  return undefined;
}

function describe(error) {
  if (error instanceof Error) return error.stack || error.message;
  const code = codeOf(error);
  return code ? `${code}: ${ERRNO_TEXT[code] ?? 'file system error'}` : String(error);
}

function failure(error) {
  return { type: 'failed', message: describe(error), code: codeOf(error) };
}

if (isMainThread) {
  const reply = (message, code) => process.send(message, () => process.exit(code));
  create(process.argv[2]).then(
    (createMs) => reply({ type: 'created', createMs }, 0),
    (error) => reply(failure(error), 1),
  );
} else {
  main().catch((error) => parentPort.postMessage(failure(error)));
}
