import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

/** The embedded engine, listening on loopback for the ordinary `pg` driver. */
export interface EmbeddedServer {
  host: '127.0.0.1';
  port: number;
  /** `postgres://postgres@127.0.0.1:<port>/postgres`; there is no password to keep. */
  dsn: string;
  /** How long PGlite took to start: seconds for a new directory, well under one to reopen. */
  openMs: number;
  /** Closes connections and the engine, flushing it to disk; idempotent. */
  stop(): Promise<void>;
}

type WorkerMessage =
  | { type: 'ready'; port: number; openMs: number }
  | { type: 'created'; createMs: number }
  | { type: 'stopped' }
  | { type: 'failed'; message: string; code?: string };

const STOP_TIMEOUT_MS = 30_000;
const WORKER = join(__dirname, 'pglite-worker.cjs');

/**
 * Starts PGlite on `directory` (created when empty) in a worker thread and serves it with
 * `PGLiteSocketServer` on 127.0.0.1 at a port the OS picks. PGlite has a single session: the
 * server queues statements from its connections and keeps each transaction's together, and
 * refuses connections beyond `maxConnections`.
 */
export async function startEmbeddedServer(options: {
  directory: string;
  maxConnections: number;
  /** Told when the engine dies while it should be serving. */
  onUnexpectedExit?: (reason: string) => void;
}): Promise<EmbeddedServer> {
  const createMs = existsSync(join(options.directory, 'PG_VERSION')) ? 0 : await createCluster(options.directory);
  const server = await serve(options);
  return { ...server, openMs: server.openMs + createMs };
}

/**
 * Runs initdb for a new directory in a child process of its own, which then exits. WebAssembly
 * memory only grows, and a worker thread's is not all handed back when the thread ends: creating
 * the directory in the serving process left it ~140 MB larger for good (330 against 190 MB).
 * Returns how long it took.
 */
function createCluster(directory: string): Promise<number> {
  const child = fork(WORKER, [directory], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], execArgv: [] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4_000)));
  return new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`embedded database exited while creating ${directory} (code ${code}): ${stderr.trim()}`)));
    child.once('message', (message: WorkerMessage) => {
      if (message.type === 'created') resolve(message.createMs);
      else reject(engineError(`embedded database failed to create ${directory}`, message));
    });
  }).finally(() => {
    if (child.exitCode === null) child.kill();
  });
}

function serve(options: Parameters<typeof startEmbeddedServer>[0]): Promise<EmbeddedServer> {
  const worker = new Worker(WORKER, {
    workerData: { directory: options.directory, maxConnections: options.maxConnections },
  });
  let stopping: Promise<void> | null = null;
  let exited = false;
  worker.once('exit', () => (exited = true));

  return new Promise<EmbeddedServer>((resolve, reject) => {
    const onStartupExit = (code: number) => reject(new Error(`embedded database exited during startup (code ${code})`));
    worker.once('error', reject);
    worker.once('exit', onStartupExit);
    worker.once('message', (message: WorkerMessage) => {
      worker.off('error', reject);
      worker.off('exit', onStartupExit);
      if (message.type !== 'ready') {
        void worker.terminate();
        reject(engineError(`embedded database failed to start on ${options.directory}`, message));
        return;
      }
      worker.on('error', (error) => options.onUnexpectedExit?.(`embedded database failed: ${error.message}`));
      worker.once('exit', (code) => {
        if (!stopping) options.onUnexpectedExit?.(`embedded database exited (code ${code})`);
      });
      resolve({
        host: '127.0.0.1',
        port: message.port,
        dsn: `postgres://postgres@127.0.0.1:${message.port}/postgres`,
        openMs: message.openMs,
        stop: () => (stopping ??= stop(worker, () => exited)),
      });
    });
  });
}

/** The engine's failure as an Error, with the file-system `code` (`ENOSPC`, `EROFS`…) when it was one. */
function engineError(what: string, message: WorkerMessage): Error {
  const error: Error & { code?: string } = new Error(`${what}: ${message.type === 'failed' ? message.message : message.type}`);
  if (message.type === 'failed' && message.code) error.code = message.code;
  return error;
}

async function stop(worker: Worker, exited: () => boolean): Promise<void> {
  if (exited()) return;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('embedded database did not stop in time')), STOP_TIMEOUT_MS);
      const done = (error?: Error) => {
        clearTimeout(timer);
        if (error) reject(error);
        else resolve();
      };
      worker.once('message', (message: WorkerMessage) =>
        done(message.type === 'failed' ? new Error(`embedded database failed to stop: ${message.message}`) : undefined),
      );
      worker.once('exit', () => done());
      worker.postMessage({ type: 'stop' });
    });
  } finally {
    await worker.terminate();
  }
}
