import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { DomainError } from '@jan/domain';
import { TempFileUploadStaging } from './temp-file-upload-staging';

describe('TempFileUploadStaging', () => {
  let root: string;
  let dir: string;
  let staging: TempFileUploadStaging;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'staging-spec-'));
    dir = join(root, 'tmp');
    staging = new TempFileUploadStaging(dir);
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it('spools, counts, hashes and keeps the first 4 KiB', async () => {
    const data = Buffer.alloc(100_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) % 251;
    const staged = await staging.stage(Readable.from(chunks(data, 1000)), { maxBytes: 100_000 });

    expect(staged.bytes).toBe(100_000);
    expect(staged.sha256).toBe(createHash('sha256').update(data).digest('hex'));
    expect(staged.head).toEqual(data.subarray(0, 4096));
    expect(await readFile(staged.path)).toEqual(data);
    expect(staged.path.startsWith(dir)).toBe(true);
    await staged.dispose();
  });

  it('opens a fresh stream every time', async () => {
    const staged = await staging.stage(Readable.from([Buffer.from('hello '), Buffer.from('world')]), { maxBytes: 100 });
    expect(await text(staged.open())).toBe('hello world');
    expect(await text(staged.open())).toBe('hello world');
    await staged.dispose();
  });

  it('accepts plain async iterables and a head shorter than 4 KiB', async () => {
    async function* source() {
      yield new Uint8Array([1, 2, 3]);
      yield new Uint8Array([4]);
    }
    const staged = await staging.stage(source(), { maxBytes: 4 });
    expect(staged.bytes).toBe(4);
    expect([...staged.head]).toEqual([1, 2, 3, 4]);
    await staged.dispose();
  });

  it('disposes idempotently and removes the file', async () => {
    const staged = await staging.stage(Readable.from([Buffer.from('x')]), { maxBytes: 10 });
    await Promise.all([staged.dispose(), staged.dispose()]);
    await staged.dispose();
    expect(await readdir(dir)).toEqual([]);
  });

  it('fails with payload_too_large as soon as the limit is passed, destroys the source and leaves nothing', async () => {
    const source = new PassThrough();
    let pulled = 0;
    const feeder = setInterval(() => {
      pulled++;
      source.write(Buffer.alloc(1024));
    }, 1);
    try {
      const error = await staging.stage(source, { maxBytes: 10_000 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DomainError);
      expect(error).toMatchObject({ code: 'payload_too_large', details: { max_bytes: 10_000 } });
      expect(source.destroyed).toBe(true);
      expect(pulled).toBeLessThan(50);
      expect(await readdir(dir)).toEqual([]);
    } finally {
      clearInterval(feeder);
    }
  });

  it('stops pulling from an endless generator at the limit', async () => {
    let yielded = 0;
    let finished = false;
    async function* endless() {
      try {
        for (;;) {
          yielded++;
          yield new Uint8Array(64 * 1024);
        }
      } finally {
        finished = true;
      }
    }
    await expect(staging.stage(endless(), { maxBytes: 1024 * 1024 })).rejects.toMatchObject({ code: 'payload_too_large' });
    expect(yielded).toBe(17);
    expect(finished).toBe(true);
    expect(await readdir(dir)).toEqual([]);
  });

  it('accepts exactly maxBytes', async () => {
    const staged = await staging.stage(Readable.from([Buffer.alloc(10)]), { maxBytes: 10 });
    expect(staged.bytes).toBe(10);
    await staged.dispose();
  });

  it('fails with empty_file on zero bytes and leaves nothing', async () => {
    await expect(staging.stage(Readable.from([]), { maxBytes: 10 })).rejects.toMatchObject({ code: 'empty_file' });
    await expect(staging.stage(Readable.from([Buffer.alloc(0)]), { maxBytes: 10 })).rejects.toMatchObject({ code: 'empty_file' });
    expect(await readdir(dir)).toEqual([]);
  });

  it('passes a source error through and leaves nothing', async () => {
    const source = new PassThrough();
    source.write(Buffer.from('partial'));
    setImmediate(() => source.destroy(new Error('client went away')));
    await expect(staging.stage(source, { maxBytes: 100 })).rejects.toThrow('client went away');
    expect(await readdir(dir)).toEqual([]);
  });
});

function* chunks(data: Buffer, size: number) {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}
