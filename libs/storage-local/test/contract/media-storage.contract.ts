import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { isDomainError, type MediaStorage } from '@jan/domain';
import { statedExpiry, statedUploadExpiry } from '@jan/domain/testing';

/** A property the server behind a stand-in cannot show, and why; the test then asserts the gap. */
export interface StandInGap {
  gap: string;
}

/**
 * What a backend (adapter + the server behind it) can be held to. Known up front so test names
 * say which property is checked end to end and which is a named stand-in gap. A gap turns the
 * test into a check that the gap is still there, so a stand-in that grows the feature fails
 * loudly and the real check gets switched on.
 */
export interface MediaStorageContractCapabilities {
  /** Whether `head`/`get` report the content type given to `put` (local disk keeps none). */
  storesContentType: boolean;
  /** Whether a signed read URL's response carries the requested Content-Type override. */
  responseContentType: true | StandInGap;
  /** Whether the server accepts a signed PUT from a plain HTTP client. */
  putUpload: true | StandInGap;
  /** POST form uploads: supported, a gap of the server, or not offered (the adapter answers PUT). */
  postUpload: true | StandInGap | 'answers-put';
  /** Whether the server refuses an expired signed URL; else how to read the expiry the URL carries. */
  expiry: true | (StandInGap & { signedExpiresAt: (url: string) => Date });
}

export interface MediaStorageContractSubject {
  storage: MediaStorage;
  /** Closes what the subject opened (objects are deleted by the suite itself). */
  dispose?: () => Promise<void>;
}

const MIB = 1024 * 1024;

/** A key every adapter accepts (local disk insists on `images/jan_<ulid>.<ext>`). */
export function contractKey(ext = 'png'): string {
  const alphabet = '0123456789abcdefghjkmnpqrstvwxyz';
  const id = Array.from(randomBytes(26), (b) => alphabet[b % 32]).join('');
  return `images/jan_${id}.${ext}`;
}

export async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** `total` bytes of a deterministic pattern, in `chunk`-sized pieces, produced lazily. */
function patternStream(total: number, chunk = 64 * 1024, seed = 7): Readable {
  async function* generate() {
    let sent = 0;
    while (sent < total) {
      const size = Math.min(chunk, total - sent);
      const piece = Buffer.alloc(size);
      for (let i = 0; i < size; i++) piece[i] = (sent + i) * seed % 251;
      sent += size;
      yield piece;
    }
  }
  return Readable.from(generate());
}

function pattern(total: number, seed = 7): Buffer {
  const data = Buffer.alloc(total);
  for (let i = 0; i < total; i++) data[i] = i * seed % 251;
  return data;
}

/** A body that yields `before` bytes, then fails. */
function failingStream(before: number): Readable {
  async function* generate() {
    let sent = 0;
    while (sent < before) {
      const size = Math.min(256 * 1024, before - sent);
      sent += size;
      yield randomBytes(size);
    }
    throw new Error('client went away');
  }
  return Readable.from(generate());
}

async function expectDomainError(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isDomainError(error) ? error.code : error).toBe(code);
}

/**
 * The MediaStorage contract, run against every adapter on a real server (local disk, S3 on an
 * S3-compatible server, GCS on an emulator or the real services). `factory` runs once per file.
 */
export function describeMediaStorageContract(
  name: string,
  can: MediaStorageContractCapabilities,
  factory: () => Promise<MediaStorageContractSubject>,
): void {
  const gapTitle = (gap: StandInGap, what: string) => `STAND-IN GAP (${gap.gap}): ${what}`;
  describe(`MediaStorage contract: ${name}`, () => {
    let subject: MediaStorageContractSubject | undefined;
    let storage: MediaStorage;
    const created: string[] = [];
    const key = (ext?: string) => {
      const k = contractKey(ext);
      created.push(k);
      return k;
    };
    const putBuffer = (k: string, data: Buffer, contentType = 'image/png') =>
      storage.put(k, Readable.from([data]), { contentType, contentLength: data.length, sha256: sha256(data) });

    beforeAll(async () => {
      subject = await factory();
      storage = subject.storage;
    });

    afterAll(async () => {
      if (!subject) return;
      await Promise.all(created.map((k) => storage.delete(k)));
      await subject.dispose?.();
    });

    it('ping succeeds', async () => {
      await expect(storage.ping()).resolves.toBeUndefined();
    });

    it('round-trips a small object: put → head → get', async () => {
      const k = key();
      const data = randomBytes(1000);
      await expect(putBuffer(k, data)).resolves.toEqual({ bytes: 1000 });
      const info = await storage.head(k);
      expect(info?.bytes).toBe(1000);
      const object = await storage.get(k);
      expect(object.bytes).toBe(1000);
      expect(await readAll(object.body)).toEqual(data);
      if (can.storesContentType) {
        expect(info?.contentType).toBe('image/png');
        expect(object.contentType).toBe('image/png');
      } else {
        expect(info?.contentType).toBeNull();
      }
    });

    it('streams a 12 MiB body in 64 KiB chunks (multipart where the adapter splits) and reads it back intact', async () => {
      const k = key();
      const total = 12 * MIB;
      const expected = pattern(total);
      const result = await storage.put(k, patternStream(total), { contentType: 'image/png', sha256: sha256(expected) });
      expect(result).toEqual({ bytes: total });
      expect((await storage.head(k))?.bytes).toBe(total);
      const object = await storage.get(k);
      expect(object.bytes).toBe(total);
      const back = await readAll(object.body);
      expect(back.length).toBe(total);
      expect(sha256(back)).toBe(sha256(expected));
    }, 60_000);

    it('overwrites an existing key', async () => {
      const k = key();
      await putBuffer(k, Buffer.from('first version'));
      await putBuffer(k, Buffer.from('second'));
      expect(await readAll((await storage.get(k)).body)).toEqual(Buffer.from('second'));
    });

    describe('byte ranges', () => {
      const data = pattern(10_000, 13);
      let k: string;
      beforeAll(async () => {
        k = key();
        await putBuffer(k, data);
      });

      it('start only: from the offset to the end', async () => {
        const object = await storage.get(k, { start: 9_000 });
        expect(object.bytes).toBe(1_000);
        expect(await readAll(object.body)).toEqual(data.subarray(9_000));
      });

      it('start and end, both inclusive', async () => {
        const object = await storage.get(k, { start: 10, end: 19 });
        expect(object.bytes).toBe(10);
        expect(await readAll(object.body)).toEqual(data.subarray(10, 20));
      });

      it('a single byte', async () => {
        const object = await storage.get(k, { start: 0, end: 0 });
        expect(object.bytes).toBe(1);
        expect(await readAll(object.body)).toEqual(data.subarray(0, 1));
      });

      it('an end past the object is clamped to the last byte', async () => {
        const object = await storage.get(k, { start: 9_990, end: 20_000 });
        expect(object.bytes).toBe(10);
        expect(await readAll(object.body)).toEqual(data.subarray(9_990));
      });
    });

    describe('missing keys', () => {
      it('get throws media_not_found', async () => {
        await expectDomainError(storage.get(contractKey()), 'media_not_found');
      });

      it('get with a range throws media_not_found', async () => {
        await expectDomainError(storage.get(contractKey(), { start: 0, end: 10 }), 'media_not_found');
      });

      it('head returns null', async () => {
        await expect(storage.head(contractKey())).resolves.toBeNull();
      });
    });

    it('delete removes the object and is idempotent (twice, and on a key never written)', async () => {
      const k = key();
      await putBuffer(k, Buffer.from('to be deleted'));
      await storage.delete(k);
      await expect(storage.head(k)).resolves.toBeNull();
      await expectDomainError(storage.get(k), 'media_not_found');
      await expect(storage.delete(k)).resolves.toBeUndefined();
      await expect(storage.delete(contractKey())).resolves.toBeUndefined();
    });

    describe('a put whose body fails midway', () => {
      it('leaves nothing at a fresh key (6 MiB sent first, past one multipart part)', async () => {
        const k = key();
        await expect(storage.put(k, failingStream(6 * MIB), { contentType: 'image/png' })).rejects.toThrow();
        await expect(storage.head(k)).resolves.toBeNull();
        await expectDomainError(storage.get(k), 'media_not_found');
      }, 60_000);

      it('keeps the previous object intact at an existing key', async () => {
        const k = key();
        const original = randomBytes(2048);
        await putBuffer(k, original);
        await expect(storage.put(k, failingStream(1 * MIB), { contentType: 'image/png' })).rejects.toThrow();
        expect(await readAll((await storage.get(k)).body)).toEqual(original);
      }, 60_000);
    });

    describe('signed read URL', () => {
      it('fetched with plain fetch returns the bytes and the content type', async () => {
        const k = key();
        const data = randomBytes(3000);
        await putBuffer(k, data);
        const signed = await storage.signedReadUrl(k, { expiresInSeconds: 60, contentType: 'image/png', contentDisposition: 'inline' });
        expect(signed.expiresAt.getTime()).toBeGreaterThan(Date.now() + 50_000);
        expect(signed.expiresAt.getTime()).toBeLessThanOrEqual(Date.now() + 61_000);
        const response = await fetch(signed.url);
        expect(response.status).toBe(200);
        expect(response.headers.get('content-type')).toBe('image/png');
        expect(Buffer.from(await response.arrayBuffer())).toEqual(data);
      });

      it('reports as expiresAt exactly the expiry the URL states: the signing second plus the TTL', async () => {
        const k = key();
        await putBuffer(k, Buffer.from('expiry'));
        for (const ttl of [900, 1]) {
          const before = Date.now();
          const signed = await storage.signedReadUrl(k, { expiresInSeconds: ttl });
          const after = Date.now();
          expect(signed.expiresAt.getTime()).toBe(statedExpiry(signed.url).getTime());
          expect(signed.expiresAt.getTime() % 1000).toBe(0);
          expect(signed.expiresAt.getTime()).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 + ttl * 1000);
          expect(signed.expiresAt.getTime()).toBeLessThanOrEqual(Math.floor(after / 1000) * 1000 + ttl * 1000);
        }
      });

      it(
        can.responseContentType === true
          ? 'applies the requested Content-Type override'
          : gapTitle(can.responseContentType, 'the server ignores response-content-type; asserted still ignored, the adapter test checks the URL asks for it'),
        async () => {
          const k = key();
          await putBuffer(k, Buffer.from('typed'), 'application/octet-stream');
          const signed = await storage.signedReadUrl(k, { expiresInSeconds: 60, contentType: 'image/webp' });
          const response = await fetch(signed.url);
          expect(response.status).toBe(200);
          expect(await response.text()).toBe('typed');
          expect(response.headers.get('content-type')).toBe(can.responseContentType === true ? 'image/webp' : 'application/octet-stream');
        },
      );

      const expiry = can.expiry;
      it(
        expiry === true
          ? 'stops working after it expires (1 s TTL)'
          : gapTitle(expiry, 'an expired URL is still served; asserted still served, and the URL is checked to carry the 1 s expiry'),
        async () => {
        const k = key();
        const data = Buffer.from('short-lived');
        await putBuffer(k, data);
        const signed = await storage.signedReadUrl(k, { expiresInSeconds: 1 });
        const fresh = await fetch(signed.url);
        expect(fresh.status).toBe(200);
        expect(await fresh.text()).toBe('short-lived');
        await sleep(Math.max(0, signed.expiresAt.getTime() - Date.now()) + 1_500);
        const stale = await fetch(signed.url);
        const staleBody = await stale.text();
        if (expiry === true) {
          expect(stale.status).toBeGreaterThanOrEqual(400);
          expect(stale.status).toBeLessThan(500);
          expect(staleBody).not.toBe('short-lived');
        } else {
          const signedExpiry = expiry.signedExpiresAt(signed.url);
          expect(Math.abs(signedExpiry.getTime() - signed.expiresAt.getTime())).toBeLessThanOrEqual(1_000);
          expect(stale.status).toBe(200);
        }
        },
        15_000,
      );
    });

    describe('signed upload URL', () => {
      const put = can.putUpload;
      it(put === true ? 'PUT with plain fetch and the returned headers stores the bytes' : gapTitle(put, 'the signed PUT is refused; asserted still refused'), async () => {
        const k = key();
        const data = randomBytes(4096);
        const upload = await storage.signedUploadUrl(k, {
          method: 'PUT',
          contentType: 'image/png',
          contentLength: data.length,
          maxBytes: 1 * MIB,
          expiresInSeconds: 60,
        });
        expect(upload.method).toBe('PUT');
        expect(upload.headers['content-type']).toBe('image/png');
        const response = await fetch(upload.url, { method: 'PUT', headers: upload.headers, body: data });
        if (put === true) {
          expect(response.status).toBeGreaterThanOrEqual(200);
          expect(response.status).toBeLessThan(300);
          expect((await storage.head(k))?.bytes).toBe(data.length);
          expect(await readAll((await storage.get(k)).body)).toEqual(data);
        } else {
          expect(response.ok).toBe(false);
          await expect(storage.head(k)).resolves.toBeNull();
        }
      });

      const post = can.postUpload;
      const postTitle =
        post === true
          ? 'POST form upload with plain fetch stores the bytes'
          : post === 'answers-put'
            ? 'a POST request is answered with a usable signed PUT (backend has no form uploads)'
            : gapTitle(post, 'the form upload is refused; asserted still refused');
      it(postTitle, async () => {
        const k = key();
        const data = randomBytes(2048);
        const upload = await storage.signedUploadUrl(k, { method: 'POST', contentType: 'image/png', maxBytes: 1 * MIB, expiresInSeconds: 60 });
        if (post === 'answers-put') {
          expect(upload.method).toBe('PUT');
          expect(upload.headers['content-type']).toBe('image/png');
          const response = await fetch(upload.url, { method: 'PUT', headers: upload.headers, body: data });
          expect(response.ok).toBe(true);
          expect(await readAll((await storage.get(k)).body)).toEqual(data);
          return;
        }
        expect(upload.method).toBe('POST');
        expect(upload.fields?.key ?? upload.fields?.Key).toBe(k);
        const form = new FormData();
        for (const [name, value] of Object.entries(upload.fields ?? {})) form.append(name, value);
        form.append('file', new Blob([data], { type: 'image/png' }));
        const response = await fetch(upload.url, { method: 'POST', body: form });
        if (post !== true) {
          expect(response.ok).toBe(false);
          await expect(storage.head(k)).resolves.toBeNull();
          return;
        }
        expect(response.status).toBeGreaterThanOrEqual(200);
        expect(response.status).toBeLessThan(300);
        expect(await readAll((await storage.get(k)).body)).toEqual(data);
      });

      // Both methods, whether or not the server takes them: the expiry is signed either way.
      it('reports as expiresAt never later than the expiry the URL or policy states (at most 1 s before the TTL is up)', async () => {
        for (const method of ['PUT', 'POST'] as const) {
          for (const ttl of [900, 1]) {
            // Late in a second, where rounding to the signing second shows most.
            while (Date.now() % 1000 < 700) await sleep(10);
            const before = Date.now();
            const upload = await storage.signedUploadUrl(key(), { method, contentType: 'image/png', maxBytes: 1 * MIB, expiresInSeconds: ttl });
            const stated = statedUploadExpiry(upload).getTime();
            expect(upload.expiresAt.getTime()).toBeLessThanOrEqual(stated);
            expect(stated - upload.expiresAt.getTime()).toBeLessThan(1000);
            expect(upload.expiresAt.getTime()).toBeGreaterThan(before + ttl * 1000 - 1000);
          }
        }
      });

      const usable = put === true ? 'PUT' : post === true ? 'POST' : null;
      if (can.expiry === true && usable) {
        it(`accepts a ${usable} upload until the expiresAt it reported (1 s TTL, signed late in a second)`, async () => {
          while (Date.now() % 1000 < 700) await sleep(10);
          const k = key();
          const data = randomBytes(512);
          const upload = await storage.signedUploadUrl(k, { method: usable, contentType: 'image/png', contentLength: usable === 'PUT' ? data.length : undefined, maxBytes: 1 * MIB, expiresInSeconds: 1 });
          // Just before the reported expiry: the URL must still work.
          await sleep(Math.max(0, upload.expiresAt.getTime() - Date.now() - 250));
          let response: Response;
          if (usable === 'PUT') {
            response = await fetch(upload.url, { method: 'PUT', headers: upload.headers, body: data });
          } else {
            const form = new FormData();
            for (const [name, value] of Object.entries(upload.fields ?? {})) form.append(name, value);
            form.append('file', new Blob([data], { type: 'image/png' }));
            response = await fetch(upload.url, { method: 'POST', body: form });
          }
          expect(response.status).toBeLessThan(300);
          expect(await readAll((await storage.get(k)).body)).toEqual(data);
        });
      }
    });
  });
}
