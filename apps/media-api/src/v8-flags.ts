import { setFlagsFromString } from 'node:v8';

/**
 * V8 flags the service runs with, set before anything allocates (and, in dist/start.js, before the
 * bundle is compiled: V8 rejects a code cache made under other flags).
 *
 * `--no-allocation-site-pretenuring`: V8 "pretenures" allocation sites whose objects often survive
 * a young GC, allocating them straight into the old generation. Under concurrent uploads the JSON
 * parser's strings (a 64 KiB image is an 87 KB data URL) qualified, so every body went to the old
 * generation and it grew by ~40 MB/s until a full GC: peak RSS under the ingest benchmark was
 * 310-380 MB with pretenuring and 240-260 MB without. It costs new-upload throughput (fewer large
 * strings copied per young GC with pretenuring); the memory target decides (docs/performance.md).
 */
export function applyV8Flags(): void {
  setFlagsFromString('--no-allocation-site-pretenuring');
}
