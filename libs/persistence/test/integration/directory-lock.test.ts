import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The built lock, as each process of the service loads it. */
const LOCK = join(__dirname, '../../dist/directory-lock.js');

/**
 * A process that waits until `startAt`, tries the lock, and on success holds it for `holdMs`.
 * Prints `got` or `refused`.
 */
function contender(file: string, startAt: number, holdMs: number): Promise<'got' | 'refused'> {
  const script = `
    const { acquireDirectoryLock } = require(${JSON.stringify(LOCK)});
    const go = () => acquireDirectoryLock(${JSON.stringify(file)}).then(
      async (release) => { process.stdout.write('got'); await new Promise((r) => setTimeout(r, ${holdMs})); await release(); },
      () => process.stdout.write('refused'));
    setTimeout(go, Math.max(0, ${startAt} - Date.now()));`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', () => (out === 'got' || out === 'refused' ? resolve(out) : reject(new Error(`contender printed ${JSON.stringify(out)}`))));
  });
}

describe('embedded database directory lock (separate processes)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'jan-media-lock-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('lets exactly one of several processes take over a lock left by a crashed one', async () => {
    const file = join(dir, 'pglite.lock');
    for (let round = 0; round < 8; round++) {
      // A pid that is not running: what a killed service leaves behind.
      await writeFile(file, '2147483646\n');
      const startAt = Date.now() + 400;
      const outcomes = await Promise.all(Array.from({ length: 8 }, () => contender(file, startAt, 800)));
      expect({ round, got: outcomes.filter((o) => o === 'got').length }).toEqual({ round, got: 1 });
    }
    await expect(readFile(file)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a second process while the first holds the lock', async () => {
    const file = join(dir, 'held.lock');
    const startAt = Date.now() + 300;
    const first = contender(file, startAt, 1500);
    const second = contender(file, startAt + 500, 0);
    expect(await Promise.all([first, second])).toEqual(['got', 'refused']);
  });
});
