import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { buffer, text } from 'node:stream/consumers';
import { DomainError } from '@jan/domain';
import { DEFAULT_IN_MEMORY_MAX_BYTES, TempFileUploadStaging } from './temp-file-upload-staging';

describe.each([
  ['spooling everything to files', 0],
  ['holding small uploads in memory', DEFAULT_IN_MEMORY_MAX_BYTES],
])('TempFileUploadStaging, %s', (_mode, inMemoryMaxBytes) => {
  let root: string;
  let dir: string;
  let staging: TempFileUploadStaging;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'staging-spec-'));
    dir = join(root, 'tmp');
    staging = new TempFileUploadStaging(dir, { inMemoryMaxBytes });
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  /** Temp files left in the staging directory (which is only created when something is spooled). */
  const leftovers = () => readdir(dir).catch(() => []);

  it.each([
    ['a stream of chunks', (data: Buffer) => Readable.from(chunks(data, 1000))],
    ['a Buffer handed over whole', (data: Buffer) => data],
  ])('counts, hashes and keeps the first 4 KiB of %s, in a file or in memory by size', async (_source, sourceOf) => {
    const data = Buffer.alloc(100_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) % 251;
    const staged = await staging.stage(sourceOf(data), { maxBytes: 100_000 });

    expect(staged.bytes).toBe(100_000);
    expect(staged.sha256).toBe(createHash('sha256').update(data).digest('hex'));
    expect(staged.head).toEqual(data.subarray(0, 4096));
    expect(await buffer(staged.open())).toEqual(data);
    if (inMemoryMaxBytes === 0) {
      expect(staged.buffer).toBeNull();
      expect(await readFile(staged.path!)).toEqual(data);
      expect(staged.path!.startsWith(dir)).toBe(true);
    } else {
      expect(staged.path).toBeNull();
      expect(staged.buffer).toEqual(data);
      // A Buffer handed over is kept as it is; a stream's chunks are copied (their producer may reuse them).
      if (Buffer.isBuffer(sourceOf(data))) expect(staged.buffer).toBe(data);
      else expect(staged.buffer).not.toBe(data);
      expect(await leftovers()).toEqual([]);
    }
    await staged.dispose();
    expect(await leftovers()).toEqual([]);
  });

  it('refuses a Buffer over the limit or empty with the same errors as a stream, leaving nothing', async () => {
    await expect(staging.stage(Buffer.alloc(101), { maxBytes: 100 })).rejects.toMatchObject({ code: 'payload_too_large', details: { max_bytes: 100 } });
    await expect(staging.stage(Buffer.alloc(0), { maxBytes: 100 })).rejects.toMatchObject({ code: 'empty_file' });
    expect(await leftovers()).toEqual([]);
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
    expect(await leftovers()).toEqual([]);
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
      expect(await leftovers()).toEqual([]);
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
    expect(await leftovers()).toEqual([]);
  });

  it('accepts exactly maxBytes', async () => {
    const staged = await staging.stage(Readable.from([Buffer.alloc(10)]), { maxBytes: 10 });
    expect(staged.bytes).toBe(10);
    await staged.dispose();
  });

  it('fails with empty_file on zero bytes and leaves nothing', async () => {
    await expect(staging.stage(Readable.from([]), { maxBytes: 10 })).rejects.toMatchObject({ code: 'empty_file' });
    await expect(staging.stage(Readable.from([Buffer.alloc(0)]), { maxBytes: 10 })).rejects.toMatchObject({ code: 'empty_file' });
    expect(await leftovers()).toEqual([]);
  });

  it('passes a source error through and leaves nothing', async () => {
    const source = new PassThrough();
    source.write(Buffer.from('partial'));
    setImmediate(() => source.destroy(new Error('client went away')));
    await expect(staging.stage(source, { maxBytes: 100 })).rejects.toThrow('client went away');
    expect(await leftovers()).toEqual([]);
  });
});

describe('TempFileUploadStaging, crossing the in-memory limit', () => {
  let root: string;
  let dir: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'staging-spec-'));
    dir = join(root, 'tmp');
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it('keeps an upload of exactly the limit in memory and spools one byte more, bytes and head intact', async () => {
    const staging = new TempFileUploadStaging(dir, { inMemoryMaxBytes: 10_000 });
    const data = Buffer.alloc(10_001);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 253;

    const small = await staging.stage(Readable.from(chunks(data.subarray(0, 10_000), 3000)), { maxBytes: 20_000 });
    expect(small.path).toBeNull();
    expect(small.buffer).toEqual(data.subarray(0, 10_000));

    const large = await staging.stage(Readable.from(chunks(data, 3000)), { maxBytes: 20_000 });
    expect(large.buffer).toBeNull();
    expect(await readFile(large.path!)).toEqual(data);
    expect(large.head).toEqual(data.subarray(0, 4096));
    expect(large.sha256).toBe(createHash('sha256').update(data).digest('hex'));
    await large.dispose();
    expect(await readdir(dir)).toEqual([]);
  });

  it('copies chunks it holds, so a source that reuses its buffer cannot change staged bytes', async () => {
    const staging = new TempFileUploadStaging(dir);
    const reused = Buffer.from('aaaa');
    async function* source() {
      yield reused;
      reused.fill('b');
      yield reused;
    }
    const staged = await staging.stage(source(), { maxBytes: 100 });
    expect(staged.buffer!.toString()).toBe('aaaabbbb');
  });

  it('removes a half-spooled file when the source fails after crossing the limit', async () => {
    const staging = new TempFileUploadStaging(dir, { inMemoryMaxBytes: 10 });
    async function* source() {
      yield Buffer.alloc(8);
      yield Buffer.alloc(8);
      throw new Error('client went away');
    }
    await expect(staging.stage(source(), { maxBytes: 100 })).rejects.toThrow('client went away');
    expect(await readdir(dir)).toEqual([]);
  });
});

function* chunks(data: Buffer, size: number) {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}
