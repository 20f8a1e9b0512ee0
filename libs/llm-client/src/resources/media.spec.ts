import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { MediaClient } from '../client';
import { APIConnectionError, APIError, APIUserAbortError, InternalServerError, MediaClientError, StorageUploadError, UnexpectedResponseError } from '../errors';
import { BASE_URL, fakeFetch, fakeSleep, json, MEDIA_OBJECT, noContent, type Handler } from '../testing/fake-fetch';

const ID = MEDIA_OBJECT.id;
const STORAGE = 'http://127.0.0.2:9000';
const BYTES = Buffer.from('\x89PNG\r\n\x1a\n fake image bytes', 'latin1');

function clientWith(handler: Handler | Handler[]) {
  const fake = fakeFetch(handler);
  const sleeper = fakeSleep();
  const client = new MediaClient({
    baseURL: BASE_URL,
    serviceKey: 'svc-key',
    fetch: fake.fetch,
    propagator: false,
    sleep: sleeper.sleep,
    env: {},
  });
  return { client, calls: fake.calls, waits: sleeper.waits };
}

/** Minimal multipart/form-data parser for assertions. */
function parseMultipart(contentType: string, body: Uint8Array) {
  const boundary = /boundary=(.+)$/.exec(contentType)![1]!;
  const text = Buffer.from(body).toString('latin1');
  expect(text.endsWith(`--${boundary}--\r\n`)).toBe(true);
  return text
    .split(`--${boundary}`)
    .slice(1, -1)
    .map((part) => {
      const [head, ...rest] = part.slice(2).split('\r\n\r\n');
      const content = rest.join('\r\n\r\n').slice(0, -2);
      return { head: head!, content };
    });
}

describe('media.upload (multipart)', () => {
  it('sends a Buffer as a file part and retries it with the same idempotency key', async () => {
    const { client, calls, waits } = clientWith([() => json(503, { error: 'busy' }), () => json(200, MEDIA_OBJECT)]);
    const result = await client.media.upload(BYTES, { filename: 'cat "1".png', mimeType: 'image/png' }, { userId: 'u1' });
    expect(result.id).toBe(ID);
    expect(calls).toHaveLength(2);
    expect(waits).toHaveLength(1);
    for (const call of calls) {
      expect(`${call.method} ${call.url.pathname}`).toBe('POST /v1/media/upload');
      expect(call.headers.get('x-jan-user-id')).toBe('u1');
      const parts = parseMultipart(call.headers.get('content-type')!, call.body!);
      expect(parts).toHaveLength(1);
      expect(parts[0]!.head).toBe(
        'Content-Disposition: form-data; name="file"; filename="cat %221%22.png"\r\nContent-Type: image/png',
      );
      expect(Buffer.from(parts[0]!.content, 'latin1').equals(BYTES)).toBe(true);
    }
    expect(calls[0]!.headers.get('idempotency-key')).toBeTruthy();
    expect(calls[1]!.headers.get('idempotency-key')).toBe(calls[0]!.headers.get('idempotency-key'));
  });

  it('streams a Readable without buffering it, and does not retry a consumed stream', async () => {
    const { client, calls } = clientWith(() => json(502, { error: 'bad gateway' }));
    const stream = Readable.from([BYTES.subarray(0, 5), BYTES.subarray(5)]);
    await expect(client.media.upload(stream, { filename: 'a.png' })).rejects.toBeInstanceOf(InternalServerError);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.init.duplex).toBe('half');
    expect(calls[0]!.init.body).toBeInstanceOf(ReadableStream);
    const parts = parseMultipart(calls[0]!.headers.get('content-type')!, calls[0]!.body!);
    expect(Buffer.from(parts[0]!.content, 'latin1').equals(BYTES)).toBe(true);
    expect(parts[0]!.head).toContain('Content-Type: application/octet-stream');
  });

  it('accepts a web ReadableStream and a Blob (type and name taken from a File)', async () => {
    const { client, calls } = clientWith(() => json(200, MEDIA_OBJECT));
    const web = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array(BYTES));
        controller.close();
      },
    });
    await client.media.upload(web);
    await client.media.upload(new File([BYTES], 'f.png', { type: 'image/png' }));
    const first = parseMultipart(calls[0]!.headers.get('content-type')!, calls[0]!.body!);
    const second = parseMultipart(calls[1]!.headers.get('content-type')!, calls[1]!.body!);
    expect(Buffer.from(first[0]!.content, 'latin1').equals(BYTES)).toBe(true);
    expect(second[0]!.head).toContain('filename="f.png"');
    expect(second[0]!.head).toContain('Content-Type: image/png');
    expect(Buffer.from(second[0]!.content, 'latin1').equals(BYTES)).toBe(true);
  });
});

describe('media.uploadDirect', () => {
  const sha = createHash('sha256').update(BYTES).digest('hex');

  it('prepares with size and SHA-256, PUTs to storage without service credentials, then completes', async () => {
    const { client, calls } = clientWith((request) => {
      if (request.url.pathname === '/v1/media/prepare-upload') {
        return json(200, {
          id: ID,
          upload_url: `${STORAGE}/bucket/key?X-Amz-Signature=abc`,
          mime_type: 'image/png',
          expires_in: 300,
          method: 'PUT',
          headers: { 'content-type': 'image/png', 'x-amz-checksum-sha256': 'xyz' },
        });
      }
      if (request.url.origin === STORAGE) return new Response(null, { status: 200 });
      return json(200, MEDIA_OBJECT);
    });
    const result = await client.media.uploadDirect(BYTES, { mimeType: 'image/png' }, { userId: 'u1' });
    expect(result).toEqual(MEDIA_OBJECT);
    expect(calls.map((c) => `${c.method} ${c.url.origin}${c.url.pathname}`)).toEqual([
      `POST ${BASE_URL}/v1/media/prepare-upload`,
      `PUT ${STORAGE}/bucket/key`,
      `POST ${BASE_URL}/v1/media/${ID}/complete`,
    ]);
    const [prepare, put, complete] = calls;
    expect(JSON.parse(prepare!.bodyText)).toEqual({ mime_type: 'image/png', bytes: BYTES.length, sha256: sha });
    expect(prepare!.headers.get('x-jan-user-id')).toBe('u1');
    expect(put!.url.search).toBe('?X-Amz-Signature=abc');
    expect(Buffer.from(put!.body!).equals(BYTES)).toBe(true);
    expect(put!.headers.get('content-type')).toBe('image/png');
    expect(put!.headers.get('x-amz-checksum-sha256')).toBe('xyz');
    expect(put!.headers.get('x-media-service-key')).toBeNull();
    expect(put!.headers.get('x-jan-user-id')).toBeNull();
    expect(complete!.headers.get('x-jan-user-id')).toBe('u1');
    expect(complete!.headers.get('idempotency-key')).toBeTruthy();
  });

  it('POSTs the form fields before the file for policy uploads', async () => {
    const { client, calls } = clientWith((request) => {
      if (request.url.pathname === '/v1/media/prepare-upload') {
        return json(200, {
          id: ID,
          upload_url: `${STORAGE}/bucket`,
          mime_type: 'image/png',
          expires_in: 300,
          method: 'POST',
          headers: {},
          fields: { key: 'staging/abc', policy: 'p0l1cy' },
        });
      }
      if (request.url.origin === STORAGE) return new Response(null, { status: 204 });
      return json(200, MEDIA_OBJECT);
    });
    await client.media.uploadDirect(new Uint8Array(BYTES), { mimeType: 'image/png', method: 'POST', sha256: false });
    expect(JSON.parse(calls[0]!.bodyText)).toEqual({ mime_type: 'image/png', bytes: BYTES.length, method: 'POST' });
    const post = calls[1]!;
    expect(post.method).toBe('POST');
    const parts = parseMultipart(post.headers.get('content-type')!, post.body!);
    expect(parts.map((p) => p.head.split('\r\n')[0])).toEqual([
      'Content-Disposition: form-data; name="key"',
      'Content-Disposition: form-data; name="policy"',
      'Content-Disposition: form-data; name="file"; filename="upload"',
    ]);
    expect(parts[0]!.content).toBe('staging/abc');
    expect(Buffer.from(parts[2]!.content, 'latin1').equals(BYTES)).toBe(true);
  });

  it('sends credentials to an upload URL on the service itself (local storage backend)', async () => {
    const { client, calls } = clientWith((request) => {
      if (request.url.pathname === '/v1/media/prepare-upload') {
        return json(200, { id: ID, upload_url: '/v1/uploads/tok', mime_type: 'image/png', expires_in: 60, method: 'PUT', headers: {} });
      }
      if (request.url.pathname === '/v1/uploads/tok') return noContent();
      return json(200, MEDIA_OBJECT);
    });
    await client.media.uploadDirect(new Blob([BYTES]), { mimeType: 'image/png' });
    expect(calls[1]!.url.href).toBe(`${BASE_URL}/v1/uploads/tok`);
    expect(calls[1]!.headers.get('x-media-service-key')).toBe('svc-key');
  });

  describe('when the upload to storage fails', () => {
    const SIGNED = `${STORAGE}/bucket/uploads/${ID}.png?X-Amz-Credential=AKIA%2F&X-Amz-Signature=s3cr3t`;
    const S3_403 = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error>';

    function storageFailing(storage: Handler, deleted: () => Response = noContent) {
      return clientWith((request, index) => {
        if (request.url.pathname === '/v1/media/prepare-upload') {
          return json(200, { id: ID, upload_url: SIGNED, mime_type: 'image/png', expires_in: 300, method: 'PUT', headers: {} });
        }
        if (request.url.origin === STORAGE) return storage(request, index);
        if (request.method === 'DELETE') return deleted();
        return json(200, MEDIA_OBJECT);
      });
    }

    it('discards the reservation and throws a StorageUploadError, not an error of the service', async () => {
      const { client, calls } = storageFailing(() => new Response(S3_403, { status: 403, headers: { 'content-type': 'application/xml' } }));
      const error = await client.media.uploadDirect(BYTES, { mimeType: 'image/png' }, { userId: 'u1' }).catch((e: unknown) => e);

      expect(error).toBeInstanceOf(StorageUploadError);
      expect(error).not.toBeInstanceOf(APIError);
      const failure = error as StorageUploadError;
      expect(failure).toMatchObject({
        name: 'StorageUploadError',
        code: 'storage_upload_failed',
        status: 403,
        storageCode: 'SignatureDoesNotMatch',
        mediaId: ID,
        reservationDiscarded: true,
        uploadUrl: `${STORAGE}/bucket/uploads/${ID}.png`,
      });
      expect(failure.message).toBe(
        `Upload to storage failed: 403 SignatureDoesNotMatch (PUT ${STORAGE}/bucket/uploads/${ID}.png); the reservation ${ID} was discarded.`,
      );
      expect(failure.message).not.toMatch(/s3cr3t|X-Amz|<Error>/);
      expect(failure.cause).toBeInstanceOf(APIError);
      expect(calls.map((c) => `${c.method} ${c.url.origin}${c.url.pathname}`)).toEqual([
        `POST ${BASE_URL}/v1/media/prepare-upload`,
        `PUT ${STORAGE}/bucket/uploads/${ID}.png`,
        `DELETE ${BASE_URL}/v1/media/${ID}`,
      ]);
      expect(calls[2]!.headers.get('x-jan-user-id')).toBe('u1');
      expect(calls[2]!.headers.get('x-media-service-key')).toBe('svc-key');
    });

    it('retries a failing bucket first, and reads a JSON code (the local backend answers like the service)', async () => {
      const { client, calls } = storageFailing(() => json(503, { error: 'slow down', code: 'storage_unavailable' }));
      const error = (await client.media.uploadDirect(BYTES, { mimeType: 'image/png' }).catch((e: unknown) => e)) as StorageUploadError;
      expect(error).toBeInstanceOf(StorageUploadError);
      expect(error).toMatchObject({ status: 503, storageCode: 'storage_unavailable', reservationDiscarded: true });
      expect(calls.filter((c) => c.url.origin === STORAGE)).toHaveLength(3);
      expect(calls.at(-1)!.method).toBe('DELETE');
    });

    it('covers a storage that never answers: no status, the connection error as cause', async () => {
      const { client, calls } = storageFailing(() => {
        throw new TypeError('fetch failed');
      });
      const error = (await client.media.uploadDirect(BYTES, { mimeType: 'image/png' }, { maxRetries: 0 }).catch((e: unknown) => e)) as StorageUploadError;
      expect(error).toBeInstanceOf(StorageUploadError);
      expect(error.status).toBeUndefined();
      expect(error.storageCode).toBeUndefined();
      expect(error.cause).toBeInstanceOf(APIConnectionError);
      expect(error.message).toMatch(/^Upload to storage failed: no answer \(Connection error: fetch failed\)/);
      expect(error.message).not.toContain('s3cr3t');
      expect(calls.map((c) => c.method)).toEqual(['POST', 'PUT', 'DELETE']);
    });

    it('says so when the reservation could not be discarded either', async () => {
      const { client } = storageFailing(
        () => new Response('denied', { status: 403 }),
        () => json(500, { error: 'db down', code: 'database_unavailable' }),
      );
      const error = (await client.media.uploadDirect(BYTES, { mimeType: 'image/png' }, { maxRetries: 0 }).catch((e: unknown) => e)) as StorageUploadError;
      expect(error).toBeInstanceOf(StorageUploadError);
      expect(error).toMatchObject({ status: 403, storageCode: undefined, reservationDiscarded: false });
      expect(error.message).toMatch(/could not be discarded \(it expires with the upload deadline\)\.$/);
    });

    it("discards the reservation when the caller aborts, and still reports the caller's abort", async () => {
      const controller = new AbortController();
      const { client, calls } = storageFailing(() => {
        controller.abort();
        throw new DOMException('aborted', 'AbortError');
      });
      const error = await client.media.uploadDirect(BYTES, { mimeType: 'image/png' }, { signal: controller.signal }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(APIUserAbortError);
      expect(calls.map((c) => c.method)).toEqual(['POST', 'PUT', 'DELETE']);
    });
  });

  it('rejects content of unknown size', async () => {
    const { client, calls } = clientWith(() => json(200, {}));
    await expect(
      client.media.uploadDirect(Readable.from([BYTES]) as unknown as Uint8Array, { mimeType: 'image/png' }),
    ).rejects.toThrow(/size up front/);
    expect(calls).toHaveLength(0);
  });
});

describe('media.download', () => {
  it('streams the bytes as a Node Readable with type and length', async () => {
    const { client, calls } = clientWith(
      () => new Response(BYTES, { status: 200, headers: { 'content-type': 'image/png', 'content-length': String(BYTES.length) } }),
    );
    const download = await client.media.download(ID, { userId: 'u1' });
    expect(download.body).toBeInstanceOf(Readable);
    expect(download.mime).toBe('image/png');
    expect(download.bytes).toBe(BYTES.length);
    expect((await download.buffer()).equals(BYTES)).toBe(true);
    expect(calls[0]!.url.pathname).toBe(`/v1/media/${ID}`);
    expect(calls[0]!.headers.get('x-jan-user-id')).toBe('u1');
    expect(calls[0]!.init.redirect).toBe('manual');
  });

  it('follows a {url} answer to storage without credentials', async () => {
    const { client, calls } = clientWith((request) =>
      request.url.origin === STORAGE
        ? new Response(BYTES, { headers: { 'content-type': 'image/png' } })
        : json(200, { url: `${STORAGE}/bucket/obj?sig=1` }),
    );
    const download = await client.media.download(ID);
    expect((await download.buffer()).equals(BYTES)).toBe(true);
    expect(calls[1]!.url.href).toBe(`${STORAGE}/bucket/obj?sig=1`);
    expect(calls[1]!.headers.get('x-media-service-key')).toBeNull();
  });

  it('follows a redirect to another origin without credentials', async () => {
    const { client, calls } = clientWith((request) =>
      request.url.origin === STORAGE
        ? new Response(BYTES, { headers: { 'content-type': 'image/png' } })
        : new Response(null, { status: 302, headers: { location: `${STORAGE}/obj` } }),
    );
    const download = await client.media.download(ID);
    expect((await download.buffer()).equals(BYTES)).toBe(true);
    expect(calls).toHaveLength(2);
    expect(calls[1]!.headers.get('x-media-service-key')).toBeNull();
  });

  it('lets the caller abort a stream that outlives the request timeout', async () => {
    let pushMore: ((chunk: Uint8Array) => void) | undefined;
    const fake = fakeFetch((request) => {
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new Uint8Array([1, 2, 3]));
          pushMore = (chunk) => controller.enqueue(chunk);
          request.init.signal!.addEventListener('abort', () => controller.error(request.init.signal!.reason));
        },
      });
      return new Response(body, { headers: { 'content-type': 'image/png' } });
    });
    const client = new MediaClient({ baseURL: BASE_URL, fetch: fake.fetch, timeoutMs: 20, propagator: false, env: {} });
    const controller = new AbortController();
    const download = await client.media.download(ID, { signal: controller.signal });
    await new Promise((r) => setTimeout(r, 50));
    // Still readable after the timeout has passed: the timeout covered only the headers.
    pushMore!(new Uint8Array([4]));
    const reader = download.body[Symbol.asyncIterator]();
    const first = await reader.next();
    expect(Buffer.from(first.value as Uint8Array)[0]).toBe(1);
    controller.abort(new Error('user stop'));
    await expect(
      (async () => {
        for (;;) {
          const next = await reader.next();
          if (next.done) break;
        }
      })(),
    ).rejects.toThrow('user stop');
  });

  it.each([
    ['JSON without a url', () => json(200, { status: 'ok' }), /^GET \/v1\/media\/\{id\} answered JSON without a url: is baseURL/],
    ['JSON null', () => json(200, null), /answered JSON without a url/],
    [
      'a JSON content type over a body that is not JSON',
      () => new Response('<html>gateway</html>', { status: 200, headers: { 'content-type': 'application/json' } }),
      /^GET \/v1\/media\/\{id\} answered a body that is not JSON \("<html>gateway<\/html>"\): is baseURL/,
    ],
  ])('rejects a 200 holding %s with UnexpectedResponseError, without retrying', async (_what, answer, message) => {
    const { client, calls } = clientWith(answer);
    const downloaded = client.media.download(ID);
    await expect(downloaded).rejects.toBeInstanceOf(UnexpectedResponseError);
    await expect(downloaded).rejects.toBeInstanceOf(MediaClientError);
    await expect(downloaded).rejects.toMatchObject({ code: 'unexpected_response', endpoint: 'GET /v1/media/{id}', message: expect.stringMatching(message) });
    expect(calls).toHaveLength(1);
  });

  it('maps an abort before the answer to APIUserAbortError', async () => {
    const { client } = clientWith(() => json(200, {}));
    const controller = new AbortController();
    controller.abort();
    await expect(client.media.download(ID, { signal: controller.signal })).rejects.toBeInstanceOf(APIUserAbortError);
  });
});
