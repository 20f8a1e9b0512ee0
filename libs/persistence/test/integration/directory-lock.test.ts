import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The built lock, as each process of the service loads it. */
const LOCK = join(__dirname, '../../dist/directory-lock.js');

/**
 * A process that waits until `startAt` and tries the lock. It prints `got` or `refused` as soon as
 * it knows, and a holder keeps the lock until its stdin closes (`release()`), so how late a process
 * starts on a loaded machine cannot let it in after an earlier holder let go.
 */
function contender(file: string, startAt: number): { outcome: Promise<'got' | 'refused'>; release: () => Promise<void> } {
  const script = `
    const { acquireDirectoryLock } = require(${JSON.stringify(LOCK)});
    const go = () => acquireDirectoryLock(${JSON.stringify(file)}).then(
      (release) => { process.stdout.write('got'); process.stdin.on('end', () => release()).resume(); },
      () => process.stdout.write('refused'));
    setTimeout(go, Math.max(0, ${startAt} - Date.now()));`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', () => resolve());
  });
  const outcome = new Promise<'got' | 'refused'>((resolve, reject) => {
    child.stdout.once('data', (chunk: Buffer) => {
      const out = chunk.toString();
      if (out === 'got' || out === 'refused') resolve(out);
      else reject(new Error(`contender printed ${JSON.stringify(out)}`));
    });
    // 'close', not 'exit': a refused contender prints and exits at once, and its 'exit' can come
    // before its output has been read (seen once under load in the full suite).
    child.once('close', () => reject(new Error('contender exited without an outcome')));
  });
  const release = async () => {
    child.stdin.end();
    await exited;
  };
  return { outcome, release };
}

/** Contenders that all try at once; each holder keeps the lock until every one has answered. */
async function contend(file: string, count: number, startAt: number): Promise<('got' | 'refused')[]> {
  const all = Array.from({ length: count }, () => contender(file, startAt));
  try {
    return await Promise.all(all.map((c) => c.outcome));
  } finally {
    await Promise.all(all.map((c) => c.release()));
  }
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
      const outcomes = await contend(file, 8, Date.now() + 400);
      expect({ round, got: outcomes.filter((o) => o === 'got').length }).toEqual({ round, got: 1 });
    }
    await expect(readFile(file)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a second process while the first holds the lock', async () => {
    const file = join(dir, 'held.lock');
    const first = contender(file, Date.now() + 300);
    try {
      expect(await first.outcome).toBe('got');
      const second = contender(file, 0);
      expect(await second.outcome).toBe('refused');
      await second.release();
    } finally {
      await first.release();
    }
  });

  it('takes over the lock of a killed service that is not reaped yet (a zombie)', async () => {
    const file = join(dir, 'zombie.lock');
    // The holder's parent execs `sleep`, which never reaps it: killed, the holder stays a zombie,
    // as a killed service does until its parent (a shell, a supervisor) collects it.
    const parent = spawn('sh', ['-c', `"${process.execPath}" -e "$HOLDER" & exec sleep 60`], {
      env: { ...process.env, HOLDER: holderScript(file) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const holder = await pidOfHolder(parent);
      process.kill(holder, 'SIGKILL');
      await waitFor(() => stateOf(holder) === 'Z');
      const next = contender(file, 0);
      expect(await next.outcome).toBe('got');
      await next.release();
    } finally {
      parent.kill('SIGKILL');
    }
  });

  it('takes over the lock of a killed service whose pid a live process has taken since (pid reuse)', async () => {
    const file = join(dir, 'reused.lock');
    const holder = spawn(process.execPath, ['-e', holderScript(file)], { stdio: ['ignore', 'pipe', 'inherit'] });
    await pidOfHolder(holder);
    const exited = new Promise((resolve) => holder.once('exit', resolve));
    holder.kill('SIGKILL');
    await exited;
    // After a reboot or a container restart the dead holder's pid can name any live process:
    // here a sleeping one, put in the lock the killed service left.
    const other = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      const leftover = await readFile(file, 'utf8');
      await writeFile(file, leftover.replace(/^\d+/, `${other.pid}`));
      const next = contender(file, 0);
      expect(await next.outcome).toBe('got');
      await next.release();
    } finally {
      other.kill('SIGKILL');
    }
  });
});

/** A process that takes the lock, prints its pid and holds the lock until killed. */
function holderScript(file: string): string {
  return `require(${JSON.stringify(LOCK)}).acquireDirectoryLock(${JSON.stringify(file)}).then(() => { process.stdout.write(String(process.pid)); setInterval(() => {}, 1000); });`;
}

function pidOfHolder(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', (chunk: Buffer) => resolve(Number(chunk.toString())));
    child.once('exit', () => reject(new Error('the holder exited before taking the lock')));
  });
}

/** The state letter in /proc/<pid>/stat (`Z` for a zombie), or undefined once it is gone. */
function stateOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((r) => setTimeout(r, 25));
  expect(condition()).toBe(true);
}
