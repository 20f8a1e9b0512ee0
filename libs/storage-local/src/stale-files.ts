import type { Dirent } from 'node:fs';
import { lstat, opendir, rm } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * How old (by last modification) a temporary file must be before start-up removes it as the
 * leftover of a write that a crash cut short. Age is the only rule that is safe when several
 * processes share the directory (PostgreSQL with local disk and more than one replica): a write in
 * flight in another process looks exactly like a dead one, except that it is recent. A write's file
 * is modified by every chunk of the body that arrives (a staged file lives as long as its ingest),
 * so only a body stalled for an hour looks dead, and the app refuses a request not received whole
 * within `MEDIA_REQUEST_TIMEOUT` (5 minutes by default; docs/operations.md, "Crash consistency").
 */
export const STALE_TEMPORARY_AGE_MS = 60 * 60 * 1000;

/**
 * Removes the regular files directly in `directory` whose names match `pattern` and that were last
 * modified before `olderThan`. Streams the directory (no full listing in memory); a missing
 * directory, or a file that vanished or cannot be removed, is skipped. Stops before the next file
 * once `signal` is aborted (shutting down). Returns how many went.
 */
export async function removeStaleFiles(directory: string, pattern: RegExp, olderThan: Date, signal?: AbortSignal): Promise<number> {
  let dir;
  try {
    dir = await opendir(directory, { bufferSize: 256 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw error;
  }
  let removed = 0;
  for await (const entry of dir) {
    // Leaving the loop closes the directory.
    if (signal?.aborted) break;
    if (!mayBeRegularFile(entry) || !pattern.test(entry.name)) continue;
    const path = join(directory, entry.name);
    try {
      const info = await lstat(path);
      if (!info.isFile() || info.mtimeMs >= olderThan.getTime()) continue;
      await rm(path);
      removed++;
    } catch {
      // Gone meanwhile (another replica's clean-up), or not ours to remove: leave it.
    }
  }
  return removed;
}

/**
 * False only when the directory entry says it is something other than a regular file. Some file
 * systems (XFS without ftype, some network and FUSE file systems) report no type at all; such an
 * entry goes on to the `lstat` that decides.
 */
export function mayBeRegularFile(entry: Dirent): boolean {
  if (entry.isFile()) return true;
  const known = entry.isDirectory() || entry.isSymbolicLink() || entry.isFIFO() || entry.isSocket() || entry.isBlockDevice() || entry.isCharacterDevice();
  return !known;
}
