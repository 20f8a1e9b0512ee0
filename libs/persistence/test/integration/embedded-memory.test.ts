import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

// The built engine (pnpm test builds first), in a process of its own each time, so that the
// resident memory measured is the engine's and nothing else this test run has loaded.
const SERVER = join(__dirname, '../../dist/embedded/embedded-server.js');
const MEASURE = `
  const { startEmbeddedServer } = require(process.argv[1]);
  startEmbeddedServer({ directory: process.argv[2], maxConnections: 4 }).then(async (server) => {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const rssMb = process.memoryUsage().rss / 1048576;
    await server.stop();
    process.stdout.write(JSON.stringify({ rssMb }));
  });
`;

jest.setTimeout(120_000);

async function residentMbAfterStart(directory: string): Promise<number> {
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', MEASURE, SERVER, directory]);
  return JSON.parse(stdout).rssMb;
}

describe('embedded engine memory', () => {
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'jan-embedded-memory-'));
  });

  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('holds no more after creating a new directory than after opening an existing one', async () => {
    const directory = join(dataDir, 'pglite');
    const afterCreate = await residentMbAfterStart(directory);
    const afterOpen = await residentMbAfterStart(directory);
    // initdb runs in a child process that exits: WebAssembly memory never shrinks, and creating in
    // the serving process kept ~800 MB (in a worker thread, ~140 MB more than opening).
    expect(afterCreate).toBeLessThan(afterOpen + 60);
    // PGlite's 128 MB default buffer pool is 32 MB here.
    expect(afterOpen).toBeLessThan(260);
  });
});
