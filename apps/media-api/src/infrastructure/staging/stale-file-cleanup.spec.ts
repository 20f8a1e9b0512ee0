import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FixedClock } from '@jan/domain/testing';
import { LocalDiskMediaStorage, STALE_TEMPORARY_AGE_MS } from '@jan/storage-local';
import { StaleFileCleanup } from './stale-file-cleanup';
import { TempFileUploadStaging } from './temp-file-upload-staging';

const MINUTE = 60_000;

/** Real files in a scratch directory; the clock that decides their age is the test's. */
describe('StaleFileCleanup', () => {
  let root: string;
  let clock: FixedClock;
  let cleanup: StaleFileCleanup | undefined;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'jan-stale-cleanup-'));
    clock = new FixedClock(new Date());
  });
  afterEach(async () => {
    await cleanup?.onModuleDestroy();
    cleanup = undefined;
    await rm(root, { recursive: true, force: true });
  });

  const objects = () => join(root, 'objects');
  const spool = () => join(root, 'tmp');

  function cleanupOf(options: { intervalSeconds: number; requestTimeoutMs: number }): StaleFileCleanup {
    const storage = new LocalDiskMediaStorage({ root: objects(), publicUrl: 'http://127.0.0.1:1', signingKeys: [{ id: 'k', secret: 's'.repeat(32) }] });
    return new StaleFileCleanup(storage, new TempFileUploadStaging(spool()), clock, options);
  }

  /** A partial object write and a spool file, last modified at `at`. */
  async function leftovers(at: Date): Promise<string[]> {
    await mkdir(join(objects(), 'images'), { recursive: true });
    await mkdir(spool(), { recursive: true });
    const paths = [join(objects(), 'images', `jan_01kb0000000000000000000000.png.${randomUUID()}.partial`), join(spool(), `upload-${randomUUID()}`)];
    for (const path of paths) {
      await writeFile(path, 'cut short');
      await utimes(path, at, at);
    }
    return paths;
  }

  const names = async () => [...(await readdir(join(objects(), 'images'))), ...(await readdir(spool()))].sort();
  const nameOf = (path: string) => path.split('/').pop()!;

  it('runs again on its interval while the service runs, removing what a write left after start-up once it is old enough', async () => {
    cleanup = cleanupOf({ intervalSeconds: 0.05, requestTimeoutMs: 5 * MINUTE });
    cleanup.onApplicationBootstrap();
    await cleanup.done();

    // Left behind after start-up (a disk error whose own clean-up failed): written now, so kept...
    const left = await leftovers(clock.now());
    await new Promise((resolve) => setTimeout(resolve, 150));
    await cleanup.done();
    expect(await names()).toEqual(left.map(nameOf).sort());

    // ...until it has been untouched for the age, when the next run removes it; a newer one stays.
    clock.advance(STALE_TEMPORARY_AGE_MS + MINUTE);
    const live = await leftovers(clock.now());
    await new Promise((resolve) => setTimeout(resolve, 150));
    await cleanup.done();
    expect(await names()).toEqual(live.map(nameOf).sort());
  });

  it('waits for the request timeout when it is longer than the age: a body may stall that long', async () => {
    cleanup = cleanupOf({ intervalSeconds: 0, requestTimeoutMs: 2 * STALE_TEMPORARY_AGE_MS });
    const stalled = await leftovers(new Date(clock.now().getTime() - STALE_TEMPORARY_AGE_MS - MINUTE));
    const dead = await leftovers(new Date(clock.now().getTime() - 2 * STALE_TEMPORARY_AGE_MS - MINUTE));
    await cleanup.run();
    expect(await names()).toEqual(stalled.map(nameOf).sort());
    expect(dead).toHaveLength(2);
  });

  it('keeps a file stalled just past the request timeout: Node ends such a request only at its next check', async () => {
    // With a 2-hour timeout Node looks for expired requests every 30 s, so a body paused for the
    // timeout and 20 s may still arrive whole; its spool file is live.
    const timeoutMs = 2 * STALE_TEMPORARY_AGE_MS;
    cleanup = cleanupOf({ intervalSeconds: 0, requestTimeoutMs: timeoutMs });
    const live = await leftovers(new Date(clock.now().getTime() - timeoutMs - 20_000));
    const dead = await leftovers(new Date(clock.now().getTime() - timeoutMs - MINUTE));
    await cleanup.run();
    expect(await names()).toEqual(live.map(nameOf).sort());
    expect(dead).toHaveLength(2);
  });

  it('never runs twice at once: a call during a run shares it', async () => {
    cleanup = cleanupOf({ intervalSeconds: 0, requestTimeoutMs: 0 });
    await leftovers(new Date(clock.now().getTime() - 2 * STALE_TEMPORARY_AGE_MS));
    const first = cleanup.run();
    expect(cleanup.run()).toBe(first);
    await first;
    expect(await names()).toEqual([]);
    // Once it is over, the next call starts a new run.
    expect(cleanup.run()).not.toBe(first);
    await cleanup.done();
  });

  it('stops a run at shut-down before its next file, rather than finishing the scan', async () => {
    cleanup = cleanupOf({ intervalSeconds: 0, requestTimeoutMs: 0 });
    await mkdir(join(objects(), 'images'), { recursive: true });
    const old = new Date(clock.now().getTime() - 2 * STALE_TEMPORARY_AGE_MS);
    for (let i = 0; i < 500; i++) {
      const path = join(objects(), 'images', `jan_01kb0000000000000000000000.png.${randomUUID()}.partial`);
      await writeFile(path, 'x');
      await utimes(path, old, old);
    }
    const running = cleanup.run();
    await cleanup.onModuleDestroy();
    await running;
    expect((await readdir(join(objects(), 'images'))).length).toBeGreaterThan(0);
    // Stopped for good: bootstrapping afterwards schedules nothing.
    cleanup.onApplicationBootstrap();
    await cleanup.done();
    expect((await readdir(join(objects(), 'images'))).length).toBeGreaterThan(0);
  });

  it('with an interval of 0 runs only at start-up', async () => {
    cleanup = cleanupOf({ intervalSeconds: 0, requestTimeoutMs: 0 });
    cleanup.onApplicationBootstrap();
    await cleanup.done();
    const left = await leftovers(new Date(clock.now().getTime() - 2 * STALE_TEMPORARY_AGE_MS));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await names()).toEqual(left.map(nameOf).sort());
  });
});
