import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

/**
 * What reaches the kernel when the local backend writes and deletes, watched with strace on a
 * child process running the built adapter: with `durable` (the default) each object's bytes are
 * flushed before the rename that names them, and a directory fsync that began after the rename
 * (or unlink) finished makes the name last; without it, no sync at all. A power cut cannot be
 * staged here, so this checks the order of the calls that make the writes survive one.
 */
const run = promisify(execFile);
const DIST = resolve(__dirname, '../../dist');

const DRIVER = `
const { LocalDiskMediaStorage } = require(process.argv[2]);
const { Readable } = require('node:stream');
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');
(async () => {
  const [root, durable, concurrent] = [process.argv[3], process.argv[4] === 'true', Number(process.argv[5])];
  const storage = new LocalDiskMediaStorage({ root, publicUrl: 'http://127.0.0.1:1', signingKeys: [{ id: 'k', secret: 'x'.repeat(32) }], durable });
  const bytes = Buffer.from('png bytes '.repeat(100));
  const key = (n) => 'images/jan_01m8efzv3ptkad8aa3vt69hv' + String(n).padStart(2, '0') + '.png';
  await storage.put(key(1), Readable.from([]), { contentType: 'image/png', sourceBuffer: bytes });
  await storage.put(key(2), Readable.from([bytes]), { contentType: 'image/png' });
  writeFileSync(join(root, 'staged.bin'), bytes);
  await storage.put(key(3), Readable.from([]), { contentType: 'image/png', sourcePath: join(root, 'staged.bin') });
  await storage.delete(key(1));
  await Promise.all(Array.from({ length: concurrent }, (_, i) => storage.put(key(10 + i), Readable.from([]), { contentType: 'image/png', sourceBuffer: bytes })));
})().catch((error) => { console.error(error); process.exit(1); });
`;

interface Call {
  name: string;
  /** The path strace printed for the first argument (`-y` turns descriptors into paths). */
  target: string;
  /** Index of the line where the call entered the kernel, and where it returned. */
  entered: number;
  returned: number;
  /** An `openat` with O_DSYNC: every write through that descriptor returns once on the disk. */
  dsync: boolean;
}

/** Parses `strace -f -y` output, pairing `<unfinished ...>` lines with their `<... resumed>`. */
function parseTrace(text: string): Call[] {
  const calls: Call[] = [];
  const open = new Map<string, Call>();
  text.split('\n').forEach((line, index) => {
    const resumed = /^(\d+)\s+<\.\.\. (\w+) resumed>/.exec(line);
    if (resumed) {
      const call = open.get(`${resumed[1]}:${resumed[2]}`);
      if (call) call.returned = index;
      return;
    }
    const entry = /^(\d+)\s+(\w+)\((?:\d+<([^>]*)>|(?:AT_FDCWD<[^>]*>, )?"([^"]*)")/.exec(line);
    if (!entry) return;
    const call: Call = { name: entry[2]!, target: entry[3] ?? entry[4]!, entered: index, returned: index, dsync: entry[2] === 'openat' && line.includes('O_DSYNC') };
    calls.push(call);
    if (line.includes('<unfinished ...>')) open.set(`${entry[1]}:${entry[2]}`, call);
  });
  return calls;
}

async function traceDriver(durable: boolean, concurrent: number): Promise<{ calls: Call[]; root: string }> {
  const work = await mkdtemp(join(tmpdir(), 'jan-durable-'));
  const root = join(work, 'root');
  const driver = join(work, 'driver.cjs');
  const trace = join(work, 'trace.txt');
  await writeFile(driver, DRIVER);
  try {
    await run('strace', ['-f', '-y', '-e', 'trace=fdatasync,fsync,rename,renameat,renameat2,unlink,unlinkat,openat,write,pwrite64', '-o', trace, process.execPath, driver, DIST, root, String(durable), String(concurrent)]);
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error('strace is not installed: `pnpm test` installs it as root on Debian (scripts/test-services/strace.mjs); otherwise install it');
    throw new Error(`the traced driver failed: ${e.stderr ?? e.message}`);
  }
  const calls = parseTrace(await readFile(trace, 'utf8'));
  return { calls, root };
}

const syncs = (calls: Call[]) => calls.filter((c) => c.name === 'fsync' || c.name === 'fdatasync');

/**
 * Whether `path`'s bytes were on the disk before line `before`: an fsync or fdatasync of it had
 * returned, or it was opened with O_DSYNC and its writes (at least one) had all returned.
 */
function flushedBefore(calls: Call[], path: string, before: number): boolean {
  if (syncs(calls).some((c) => c.target === path && c.returned < before)) return true;
  const opened = calls.find((c) => c.name === 'openat' && c.target === path);
  const writes = calls.filter((c) => (c.name === 'write' || c.name === 'pwrite64') && c.target === path);
  return Boolean(opened?.dsync) && writes.length > 0 && writes.every((c) => c.returned < before);
}

describe('LocalDiskMediaStorage durable writes (strace on the built adapter)', () => {
  const roots: string[] = [];
  afterAll(async () => {
    for (const root of roots) await rm(resolve(root, '..'), { recursive: true, force: true });
  });

  it('flushes each object before naming it and syncs the directory after each rename and unlink', async () => {
    const { calls, root } = await traceDriver(true, 16);
    roots.push(root);
    const images = join(root, 'images');
    const renames = calls.filter((c) => c.name.startsWith('rename') && c.target.startsWith(images));
    expect(renames).toHaveLength(3 + 16);
    const directorySyncs = syncs(calls).filter((c) => c.target === images);
    for (const rename of renames) {
      // The temporary file's bytes reached the disk before the rename began...
      const flushed = flushedBefore(calls, rename.target, rename.entered);
      expect({ rename: rename.target, flushed }).toEqual({ rename: rename.target, flushed: true });
      // ...and a directory sync entered the kernel only after the rename returned.
      const named = directorySyncs.find((c) => c.entered > rename.returned);
      expect({ rename: rename.target, named: Boolean(named) }).toEqual({ rename: rename.target, named: true });
    }
    const unlink = calls.find((c) => c.name.startsWith('unlink') && c.target.endsWith('hv01.png'));
    expect(unlink).toBeDefined();
    expect(directorySyncs.some((c) => c.entered > unlink!.returned)).toBe(true);
    // Sixteen concurrent puts share directory syncs rather than paying one each.
    const concurrentRenames = renames.slice(3);
    const firstRename = Math.min(...concurrentRenames.map((r) => r.entered));
    expect(directorySyncs.filter((c) => c.entered > firstRename).length).toBeLessThan(16);
    // What was written is all there, and nothing temporary is left.
    const names = await readdir(images);
    expect(names.filter((n) => n.includes('partial'))).toEqual([]);
    expect(names).toHaveLength(2 + 16);
  });

  it('makes no sync call at all when durable is off', async () => {
    const { calls, root } = await traceDriver(false, 4);
    roots.push(root);
    expect(calls.filter((c) => c.name.startsWith('rename')).length).toBe(3 + 4);
    expect(syncs(calls).filter((c) => c.target.startsWith(root))).toEqual([]);
    expect(calls.filter((c) => c.dsync && c.target.startsWith(root))).toEqual([]);
  });
});
