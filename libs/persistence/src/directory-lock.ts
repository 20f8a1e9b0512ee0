import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, readFile, rm, writeFile } from 'node:fs/promises';

const heldInThisProcess = new Set<string>();

/** The directory's lock is held by another live process (`pid`): a second service on one data dir. */
export class DirectoryInUseError extends Error {
  constructor(
    readonly file: string,
    readonly pid: number,
  ) {
    super(`embedded database is in use by process ${pid} (lock file ${file})`);
    this.name = 'DirectoryInUseError';
  }
}

/**
 * An exclusive lock file holding this process's pid. A file left by a process that is gone is
 * taken over (a crash must not block the next start); one held by a live process is an error.
 * Advisory only: it protects against a second service on the same host, not against a
 * directory shared between machines.
 *
 * The file appears with the pid already in it (written aside, then linked into place), so no one
 * sees it empty and takes it for a leftover. A leftover is taken over by one process at a time
 * (`<file>.takeover`, made the same way), and only if it still names the dead owner once that
 * marker is held: two processes that both found the leftover, started together after a crash,
 * each removed it and could remove the other's new lock, and both opened the database.
 *
 * A pid alone does not tell a dead holder from a live one (Linux): a killed service stays a zombie
 * until its parent collects it, and after a reboot or a container restart its pid can name any
 * process. So the file's second line names the holder's boot and start time (`/proc`), and a pid
 * whose process is a zombie or started at another time is a leftover. Where `/proc` is missing,
 * and for a file with the pid only, a live pid is the holder.
 */
export async function acquireDirectoryLock(file: string, log?: (message: string) => void): Promise<() => Promise<void>> {
  if (heldInThisProcess.has(file)) throw new Error(`embedded database is already open in this process (${file})`);
  const takeover = `${file}.takeover`;
  for (let attempt = 0; attempt < 100; attempt++) {
    if (await createWithPid(file)) return held(file);
    const leftover = await contentOf(file);
    if (leftover === undefined) continue;
    const owner = ownerIn(leftover);
    if (owner !== null) throw new DirectoryInUseError(file, owner);

    if (!(await createWithPid(takeover))) {
      // Another process is taking it over (or died doing so: then its marker goes too).
      const marker = await contentOf(takeover);
      if (marker !== undefined && ownerIn(marker) === null) await rm(takeover, { force: true });
      await new Promise((resolve) => setTimeout(resolve, 20));
      continue;
    }
    try {
      if ((await contentOf(file)) !== leftover) continue;
      log?.(`embedded database: taking over stale lock ${file} (pid ${leftover.trim() || 'unknown'})`);
      await rm(file, { force: true });
      if (await createWithPid(file)) return held(file);
    } finally {
      await rm(takeover, { force: true });
    }
  }
  throw new Error(`could not lock ${file}`);
}

function held(file: string): () => Promise<void> {
  heldInThisProcess.add(file);
  return async () => {
    heldInThisProcess.delete(file);
    await rm(file, { force: true });
  };
}

/** Creates `file` holding this process's pid, whole; false if it exists. */
async function createWithPid(file: string): Promise<boolean> {
  const aside = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(aside, `${process.pid}\n${identityOf(process.pid) ?? ''}\n`, { flag: 'wx' });
  try {
    await link(aside, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await rm(aside, { force: true });
  }
}

async function contentOf(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** The live process a lock file names, or null for a leftover. */
function ownerIn(content: string): number | null {
  const [first = '', identity = ''] = content.split('\n');
  const owner = Number.parseInt(first.trim(), 10);
  // Our own pid in a file we do not hold is a leftover from an earlier life (pid 1 in containers).
  if (!Number.isInteger(owner) || owner <= 0 || owner === process.pid || !isAlive(owner)) return null;
  const stat = procStat(owner);
  if (stat === undefined) return owner;
  if (stat.state === 'Z' || stat.state === 'X') return null;
  return identity.trim() === '' || identity.trim() === identityOf(owner) ? owner : null;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** `boot=<boot id> start=<clock ticks after boot>` of a process, which no other process shares; undefined without /proc. */
function identityOf(pid: number): string | undefined {
  const stat = procStat(pid);
  const boot = readIfPresent('/proc/sys/kernel/random/boot_id')?.trim();
  return stat && boot ? `boot=${boot} start=${stat.start}` : undefined;
}

/** State letter and start time (fields 3 and 22) of /proc/<pid>/stat; the name in field 2 may hold spaces and parentheses. */
function procStat(pid: number): { state: string; start: string } | undefined {
  const stat = readIfPresent(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '', start: fields[19] ?? '' };
}

function readIfPresent(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
