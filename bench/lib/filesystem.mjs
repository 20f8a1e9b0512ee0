// The file system's state, which moves ingest numbers more than most code changes do.
//
// On this machine's ext4 (no journal), creating a file scans past every inode of the directory's
// block group that was freed recently (`recently_deleted()`: in the last 5 s, or 300 s while the
// inode table's block is still dirty). After an earlier run deleted its thousands of files, one
// create cost 600-1,100 µs of kernel time instead of about 100 (docs/performance.md, "Tenth pass"),
// depending on which group a new directory landed in: the ingest baseline went from 5,300 to 1,500
// uploads/s between runs of the same code. So every measured window starts with the dirty pages
// of the last one written back, service and baseline write into sibling directories (ext4 puts a
// directory in its parent's group when it can, so both allocate from the same group), and each
// ingest window records what a file create costs at its start.
import { execFileSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';

/** Writes back every dirty page (the earlier window's files), so no window pays for another's. */
export function settleFileSystem() {
  const started = performance.now();
  execFileSync('sync');
  return performance.now() - started;
}

let probes = 0;

/**
 * CPU (user + system) one empty file create costs in `dir`, averaged over `count` creates. The files
 * stay (a delete would itself make later creates slower); the run's directory goes at the end.
 */
export function fileCreateCostUs(dir, count = 400) {
  const prefix = join(dir, `.create-probe-${process.pid}-${++probes}-`);
  const before = process.cpuUsage();
  for (let i = 0; i < count; i++) closeSync(openSync(`${prefix}${i}`, 'wx'));
  const used = process.cpuUsage(before);
  return (used.user + used.system) / count;
}
