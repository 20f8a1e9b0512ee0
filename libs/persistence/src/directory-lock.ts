import { open, readFile, rm } from 'node:fs/promises';

const heldInThisProcess = new Set<string>();

/**
 * An exclusive lock file holding this process's pid. A file left by a process that is gone is
 * taken over (a crash must not block the next start); one held by a live process is an error.
 * Advisory only: it protects against a second service on the same host, not against a
 * directory shared between machines.
 */
export async function acquireDirectoryLock(file: string, log?: (message: string) => void): Promise<() => Promise<void>> {
  if (heldInThisProcess.has(file)) throw new Error(`embedded database is already open in this process (${file})`);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(file, 'wx');
      try {
        await handle.writeFile(`${process.pid}\n`);
      } finally {
        await handle.close();
      }
      heldInThisProcess.add(file);
      return async () => {
        heldInThisProcess.delete(file);
        await rm(file, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number.parseInt((await readFile(file, 'utf8').catch(() => '')).trim(), 10);
      // Our own pid in a file we do not hold is a leftover from an earlier life (pid 1 in containers).
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
        throw new Error(`embedded database is in use by process ${owner} (lock file ${file})`);
      }
      log?.(`embedded database: taking over stale lock ${file} (pid ${Number.isNaN(owner) ? 'unknown' : owner})`);
      await rm(file, { force: true });
    }
  }
  throw new Error(`could not lock ${file}`);
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
