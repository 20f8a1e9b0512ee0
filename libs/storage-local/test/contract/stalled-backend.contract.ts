import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { isDomainError, type MediaStorage } from '@jan/domain';
import { contractKey, readAll } from './media-storage.contract';
import { startRecordingProxy, type RecordedRequest } from './recording-proxy';

/** What a cloud adapter's stall tests need: the adapter made three ways, and its object reads. */
export interface StalledBackendSubject {
  /** The backend's origin (the stand-in's URL). */
  origin: string;
  /** The adapter on `origin` with its default options. */
  direct(): MediaStorage;
  /** The adapter with no retries and a 300 ms request timeout, on `origin` or the given one. */
  withShortTimeout(origin?: string): MediaStorage;
  /** Whether a request through the proxy reads the bytes of `key`. */
  readsObject(request: RecordedRequest, key: string): boolean;
}

/** The error code (or the error itself, when it has none) of ping, head, get, delete and put, in turn. */
export async function codesOfEveryOperation(storage: MediaStorage): Promise<unknown[]> {
  const results = [
    await failure(storage.ping()),
    await failure(storage.head(contractKey())),
    await failure(storage.get(contractKey())),
    await failure(storage.delete(contractKey())),
    await failure(storage.put(contractKey(), Readable.from([randomBytes(10)]), { contentType: 'image/png' })),
  ];
  return results.map((e) => (isDomainError(e) ? e.code : e));
}

/**
 * A bucket that stops sending midway while its connection stays open: the adapter's body fails
 * with storage_unavailable after its request timeout (no SDK timeout covers a body once its
 * headers have come), and only a silent bucket counts, never a reader that pauses.
 */
export function describeStalledReads(name: string, subject: () => StalledBackendSubject): void {
  describe(`${name}: a read whose body stops midway (a bucket stalling mid-stream)`, () => {
    it('errors the body with storage_unavailable after requestTimeoutMs without data, instead of hanging the reader', async () => {
      const s = subject();
      const key = contractKey();
      const direct = s.direct();
      await direct.put(key, Readable.from([randomBytes(256 * 1024)]), { contentType: 'image/png' });
      const proxy = await startRecordingProxy(s.origin, { stallAfterBytes: (r) => (s.readsObject(r, key) ? 1000 : undefined) });
      const storage = s.withShortTimeout(proxy.origin);
      try {
        const object = await storage.get(key);
        const started = Date.now();
        const error = await failure(readAll(object.body));
        expect(isDomainError(error) ? error.code : error).toBe('storage_unavailable');
        expect(Date.now() - started).toBeLessThan(5_000);
      } finally {
        destroy(storage);
        await proxy.close();
        await direct.delete(key);
        destroy(direct);
      }
    }, 15_000);

    it('a reader that pauses longer than requestTimeoutMs still gets every byte (only a silent bucket counts)', async () => {
      const data = randomBytes(3 * 1024 * 1024);
      const key = contractKey();
      const writer = subject().direct();
      const storage = subject().withShortTimeout();
      try {
        // Written with the default timeout: GCS bounds a single-request upload as a whole, and
        // 300 ms for 3 MiB fails on a busy machine. Only the read is under test.
        await writer.put(key, Readable.from([data]), { contentType: 'image/png' });
        const object = await storage.get(key);
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        expect((await readAll(object.body)).equals(data)).toBe(true);
      } finally {
        await writer.delete(key);
        destroy(storage);
        destroy(writer);
      }
    }, 15_000);
  });
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => new Error('expected a rejection'),
    (error: unknown) => error,
  );
}

/** Adapters that hold sockets (S3's client) close them. */
function destroy(storage: MediaStorage): void {
  (storage as { destroy?: () => void }).destroy?.();
}
