import { randomUUID } from 'node:crypto';
import { constants, Dirent } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalDiskMediaStorage } from './local-disk-media-storage';
import { mayBeRegularFile, STALE_TEMPORARY_AGE_MS } from './stale-files';

describe('LocalDiskMediaStorage.removeStaleTemporaries', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'jan-stale-'));
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  async function file(path: string, ageMs: number): Promise<void> {
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, 'x');
    const at = new Date(Date.now() - ageMs);
    await utimes(path, at, at);
  }

  it('removes partial files and probes untouched for longer than the age, and nothing else', async () => {
    const storage = new LocalDiskMediaStorage({ root, publicUrl: 'http://127.0.0.1:1', signingKeys: [{ id: 'k', secret: 's'.repeat(32) }] });
    const old = STALE_TEMPORARY_AGE_MS + 60_000;
    const deadImage = `jan_01kb0000000000000000000000.png.${randomUUID()}.partial`;
    const deadUpload = `jan_01kb0000000000000000000001.webp.${randomUUID()}.partial`;
    const liveImage = `jan_01kb0000000000000000000002.png.${randomUUID()}.partial`;
    await file(join(root, 'images', deadImage), old);
    await file(join(root, 'uploads', deadUpload), old);
    await file(join(root, '.readiness', `${randomUUID()}.probe`), old);
    // A write in flight (maybe in another process sharing the directory).
    await file(join(root, 'images', liveImage), 1000);
    // Objects, however old, and names that are not a write's temporary file stay.
    await file(join(root, 'images', 'jan_01kb0000000000000000000003.png'), old);
    await file(join(root, 'images', 'notes.partial'), old);

    const now = new Date();
    expect(await storage.removeStaleTemporaries(new Date(now.getTime() - STALE_TEMPORARY_AGE_MS))).toBe(3);
    expect((await readdir(join(root, 'images'))).sort()).toEqual(['jan_01kb0000000000000000000003.png', liveImage, 'notes.partial'].sort());
    expect(await readdir(join(root, 'uploads'))).toEqual([]);
    expect(await readdir(join(root, '.readiness'))).toEqual([]);
  });

  it('is a no-op on a fresh data directory', async () => {
    const storage = new LocalDiskMediaStorage({ root: join(root, 'absent'), publicUrl: 'http://127.0.0.1:1', signingKeys: [{ id: 'k', secret: 's'.repeat(32) }] });
    expect(await storage.removeStaleTemporaries(new Date())).toBe(0);
  });
});

describe('mayBeRegularFile', () => {
  // Dirent's constructor takes libuv's entry type (fs.constants.UV_DIRENT_*, missing from
  // @types/node), as `opendir` fills it in from d_type.
  const types = constants as unknown as Record<string, number>;
  const entry = (name: string) => new (Dirent as unknown as new (name: string, type: number, path: string) => Dirent)('x.partial', types[`UV_DIRENT_${name}`]!, '/tmp');

  it('lets a file, and an entry whose type the file system did not report, on to lstat', () => {
    expect(mayBeRegularFile(entry('FILE'))).toBe(true);
    expect(mayBeRegularFile(entry('UNKNOWN'))).toBe(true);
  });

  it('skips entries known to be something else', () => {
    for (const type of ['DIR', 'LINK', 'FIFO', 'SOCKET', 'CHAR', 'BLOCK']) {
      expect(mayBeRegularFile(entry(type))).toBe(false);
    }
  });
});
