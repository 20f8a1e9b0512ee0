// The file system's state, which moves ingest numbers more than most code changes do.
//
// On this machine's ext4 (no journal), creating a file scans past every inode of the directory's
// block group that was freed recently (`recently_deleted()`: in the last 5 s, or 300 s while the
// inode table's block is still dirty). After an earlier run deleted its thousands of files, one
// create cost 600-1,100 µs of kernel time instead of about 100 (docs/performance.md, "Tenth pass"),
// depending on which group a new directory landed in: the ingest baseline went from 5,300 to 1,500
// uploads/s between runs of the same code. So every measured window starts with the dirty pages
// of the last one written back, service and baseline write into sibling directories (ext4 puts a
// directory in its parent's group when it can, so both allocate from the same group). The ingest
// baseline's own CPU per upload shows which state a run met: about 200 µs, or about 1,000.
import { execFileSync } from 'node:child_process';

/** Writes back every dirty page (the earlier window's files), so no window pays for another's. */
export function settleFileSystem() {
  const started = performance.now();
  execFileSync('sync');
  return performance.now() - started;
}
