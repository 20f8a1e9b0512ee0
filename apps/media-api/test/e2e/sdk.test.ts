import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import {
  APIError,
  AuthenticationError,
  createMediaMigration,
  CutoverViolationError,
  MediaClient,
  NotFoundError,
  PayloadTooLargeError,
  StorageUploadError,
  UnresolvablePlaceholderError,
  UnsupportedMediaTypeError,
  validateCutover,
  type ResolveLatencyMeta,
} from '@jan/media-client';
import sharp from 'sharp';
import { dataUrl, jpegImage, noisyPng, pngImage, uniqueUser } from '../support/images';
import { SERVICE_KEY, startTestApp, type TestApp } from '../support/test-app';

/**
 * The service driven through its SDK, as llm-api and the web app will drive it: every endpoint,
 * the typed error tree and the migration kit, against the real app on PostgreSQL and local disk.
 */
describe('@jan/media-client against the running service', () => {
  let app: TestApp;
  let client: MediaClient;
  let origin: Server;
  let originUrl: string;
  let remotePng: Buffer;

  beforeAll(async () => {
    remotePng = await pngImage(9001, 24);
    // A loopback image host for remote_url ingest; the service may reach it only because the
    // test allows 127.0.0.1/32 explicitly.
    origin = createServer((request, response) => {
      if (request.url === '/cat.png') response.writeHead(200, { 'content-type': 'image/png' }).end(remotePng);
      else response.writeHead(404).end();
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
    app = await startTestApp({
      env: { MEDIA_RESOLVE_INLINE: 'true', MEDIA_REMOTE_FETCH_ALLOW_CIDRS: '127.0.0.1/32', MEDIA_REMOTE_FETCH_TIMEOUT: '5s' },
    });
    client = new MediaClient({ baseURL: app.baseUrl, serviceKey: SERVICE_KEY, env: {} });
  });

  afterAll(async () => {
    await app?.close();
    await new Promise((resolve) => origin?.close(resolve));
  });

  const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

  describe('ingest', () => {
    it('ingests a data URL and dedupes identical bytes per owner', async () => {
      const user = uniqueUser('sdk');
      const png = await pngImage(2001);
      const first = await client.media.ingestDataUrl(dataUrl(png), { filename: 'first.png' }, { userId: user });
      expect(first).toMatchObject({ mime: 'image/png', bytes: png.length, sha256: sha256(png), deduped: false });
      expect(first.id).toMatch(/^jan_[a-z0-9]{26}$/);
      expect(first.url).toMatch(/^http:\/\/127\.0\.0\.1:/);
      expect(first.presigned_url).toBe(first.url);
      expect(first.expires_in).toBeGreaterThan(0);

      const again = await client.media.ingestDataUrl(dataUrl(png), {}, { userId: user });
      expect(again).toMatchObject({ id: first.id, deduped: true });

      const someoneElse = await client.media.ingestDataUrl(dataUrl(png), {}, { userId: uniqueUser('sdk') });
      expect(someoneElse.deduped).toBe(false);
      expect(someoneElse.id).not.toBe(first.id);
    });

    it('uploads a Buffer as multipart and a Node stream unbuffered; the same bytes dedupe across paths', async () => {
      const user = uniqueUser('sdk');
      const png = await pngImage(2002);
      const fromBuffer = await client.media.upload(png, { filename: 'buffer.png', mimeType: 'image/png' }, { userId: user });
      expect(fromBuffer).toMatchObject({ mime: 'image/png', bytes: png.length, deduped: false });
      const viaDataUrl = await client.media.ingestDataUrl(dataUrl(png), {}, { userId: user });
      expect(viaDataUrl).toMatchObject({ id: fromBuffer.id, deduped: true });

      const jpeg = await jpegImage(2003, 32);
      const chunks = [jpeg.subarray(0, 10), jpeg.subarray(10, 200), jpeg.subarray(200)];
      const fromStream = await client.media.upload(Readable.from(chunks), { filename: 'stream.jpg' }, { userId: user });
      expect(fromStream).toMatchObject({ mime: 'image/jpeg', bytes: jpeg.length, sha256: sha256(jpeg), deduped: false });

      const web = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new Uint8Array(jpeg));
          controller.close();
        },
      });
      expect(await client.media.upload(web, { filename: 'web.jpg' }, { userId: user })).toMatchObject({ id: fromStream.id, deduped: true });
    });

    it('has the service fetch a remote URL', async () => {
      const user = uniqueUser('sdk');
      const object = await client.media.ingestRemoteUrl(`${originUrl}/cat.png`, { filename: 'cat.png' }, { userId: user });
      expect(object).toMatchObject({ mime: 'image/png', bytes: remotePng.length, sha256: sha256(remotePng) });
      expect(await (await client.media.download(object.id, { userId: user })).buffer()).toEqual(remotePng);
    });
  });

  describe('reading', () => {
    it('reads metadata, streams the exact bytes back, and presigns a URL plain fetch can use', async () => {
      const user = uniqueUser('sdk');
      const jpeg = await jpegImage(2004, 48);
      const { id } = await client.media.upload(jpeg, { filename: 'photo.jpg' }, { userId: user });

      const metadata = await client.media.metadata(id, { userId: user });
      expect(metadata).toMatchObject({ id, mime: 'image/jpeg', bytes: jpeg.length, sha256: sha256(jpeg), status: 'ready', pinned: false, filename: 'photo.jpg' });
      expect(Date.parse(metadata.created_at)).not.toBeNaN();
      expect(Date.parse(metadata.retention_until!)).toBeGreaterThan(Date.parse(metadata.created_at));

      const download = await client.media.download(id, { userId: user });
      expect(download.mime).toBe('image/jpeg');
      expect(download.bytes).toBe(jpeg.length);
      const received: Buffer[] = [];
      for await (const chunk of download.body) received.push(Buffer.from(chunk as Uint8Array));
      expect(Buffer.concat(received)).toEqual(jpeg);

      const presigned = await client.media.presign(id, {}, { userId: user });
      expect(presigned).toMatchObject({ id, url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:/) });
      expect(presigned.expires_in).toBeGreaterThan(0);
      const plain = await fetch(presigned.url);
      expect(plain.status).toBe(200);
      expect(plain.headers.get('content-type')).toBe('image/jpeg');
      expect(Buffer.from(await plain.arrayBuffer())).toEqual(jpeg);

      const attachment = await client.media.presign(id, { download: true }, { userId: user });
      expect((await fetch(attachment.url)).headers.get('content-disposition')).toMatch(/^attachment/);
    });
  });

  describe('resolve', () => {
    it('replaces both placeholder forms in a payload with URLs, or with inline bytes', async () => {
      const user = uniqueUser('sdk');
      const png = await pngImage(2005);
      const { id } = await client.media.ingestDataUrl(dataUrl(png), {}, { userId: user });
      const payload = {
        model: 'gpt-x',
        messages: [
          { role: 'user', content: [{ type: 'text', text: 'what is this?' }, { type: 'image_url', image_url: { url: `data:image/png;${id}` } }] },
          { role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${id}` } }] },
        ],
        temperature: 0.2,
      };

      const resolved = await client.media.resolvePayload(payload, {}, { userId: user });
      const urls = [resolved.messages[0]!.content[1]!.image_url!.url, resolved.messages[1]!.content[0]!.image_url!.url];
      for (const url of urls) {
        expect(url).toMatch(/^http:\/\/127\.0\.0\.1:/);
        expect(Buffer.from(await (await fetch(url)).arrayBuffer())).toEqual(png);
      }
      expect(resolved.messages[0]!.content[0]).toEqual(payload.messages[0]!.content[0]);
      expect(resolved.temperature).toBe(0.2);

      const inline = await client.media.resolvePayload(payload, { mode: 'inline' }, { userId: user });
      expect(inline.messages[0]!.content[1]!.image_url!.url).toBe(dataUrl(png));

      const wire = await client.media.resolve({ payload: { nothing: ['here', 1, null] } }, { userId: user });
      expect(wire).toEqual({ payload: { nothing: ['here', 1, null] } });
    });

    it('presigns a list of ids', async () => {
      const user = uniqueUser('sdk');
      const a = await client.media.ingestDataUrl(dataUrl(await pngImage(2006)), {}, { userId: user });
      const b = await client.media.upload(await jpegImage(2007), {}, { userId: user });
      const media = await client.media.resolveIds([a.id, b.id], { userId: user });
      expect(media.map((m) => m.id)).toEqual([a.id, b.id]);
      for (const item of media) {
        expect(item.presigned_url).toMatch(/^http:\/\/127\.0\.0\.1:/);
        expect(Date.parse(item.expires_at)).toBeGreaterThan(Date.now());
        expect((await fetch(item.presigned_url)).status).toBe(200);
      }
    });

    it('fails on an unknown placeholder, or keeps it with keepUnresolved', async () => {
      const user = uniqueUser('sdk');
      const { id } = await client.media.ingestDataUrl(dataUrl(await pngImage(2008)), {}, { userId: user });
      const missing = 'jan_01hqr8v9k2x3f4g5h6j7k8m9n0';
      const payload = { images: [`data:image/png;${id}`, `data:image/png;${missing}`] };

      const error = await client.media.resolvePayload(payload, {}, { userId: user }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NotFoundError);
      expect((error as NotFoundError).code).toBe('media_not_found');
      expect(((error as NotFoundError).body as { details?: unknown }).details).toEqual({ ids: [missing] });

      const kept = await client.media.resolvePayload(payload, { keepUnresolved: true }, { userId: user });
      expect(kept.images[0]).toMatch(/^http:\/\//);
      expect(kept.images[1]).toBe(`data:image/png;${missing}`);
    });
  });

  describe('direct upload', () => {
    it('prepares, PUTs to the signed URL and completes in one call', async () => {
      const user = uniqueUser('sdk');
      const png = await pngImage(2009, 40);
      const object = await client.media.uploadDirect(png, { mimeType: 'image/png' }, { userId: user });
      expect(object).toMatchObject({ mime: 'image/png', bytes: png.length, sha256: sha256(png), deduped: false });
      expect(await client.media.metadata(object.id, { userId: user })).toMatchObject({ status: 'ready', bytes: png.length });
      expect(await (await client.media.download(object.id, { userId: user })).buffer()).toEqual(png);
    });

    it('refuses to complete when the uploaded bytes differ from what was declared', async () => {
      const user = uniqueUser('sdk');
      const png = await pngImage(2010);
      const prepared = await client.media.prepareUpload({ mime_type: 'image/png', bytes: png.length, sha256: sha256(png) }, { userId: user });
      expect(prepared.upload_url).toMatch(/^http:\/\/127\.0\.0\.1:/);
      const other = await pngImage(2011);
      const put = await fetch(prepared.upload_url, { method: prepared.method, headers: prepared.headers, body: other });
      // The local backend checks size and checksum at the door or at completion: either way the
      // object never becomes ready.
      if (put.ok) {
        const error = await client.media.complete(prepared.id, { userId: user }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(APIError);
        expect([409, 422]).toContain((error as APIError).status);
      } else {
        expect(put.status).toBeGreaterThanOrEqual(400);
      }
      await expect(client.media.download(prepared.id, { userId: user })).rejects.toBeInstanceOf(NotFoundError);
    });

    it('discards the reservation when the storage refuses the bytes, and says it was the storage', async () => {
      const user = uniqueUser('sdk');
      const png = await pngImage(2020);
      // A reservation counts toward usage until it is completed, deleted or reaped.
      const reservation = await client.media.prepareUpload({ mime_type: 'image/png', bytes: png.length }, { userId: user });
      expect(await client.usage.retrieve({ userId: user })).toMatchObject({ objects: 1 });
      await client.media.delete(reservation.id, { userId: user });
      expect(await client.usage.retrieve({ userId: user })).toMatchObject({ objects: 0 });

      let spoiled = 0;
      // The local backend's upload URL points at the service: spoil its signature on the way.
      const tampering = client.withOptions({
        fetch: async (input, init) => {
          const url = new URL(input instanceof Request ? input.url : String(input));
          if (url.pathname.startsWith('/v1/uploads/')) {
            spoiled++;
            url.searchParams.set('sig', `x${url.searchParams.get('sig') ?? ''}`);
          }
          return fetch(url, init);
        },
      });
      const error = await tampering.media.uploadDirect(png, { mimeType: 'image/png' }, { userId: user }).catch((e: unknown) => e);
      expect(spoiled).toBeGreaterThan(0);
      expect(error).toBeInstanceOf(StorageUploadError);
      expect(error).not.toBeInstanceOf(APIError);
      const failure = error as StorageUploadError;
      expect(failure).toMatchObject({ code: 'storage_upload_failed', status: 403, storageCode: 'invalid_signature', reservationDiscarded: true });
      expect(failure.message).not.toMatch(/sig=|expires=/);
      await expect(client.media.metadata(failure.mediaId, { userId: user })).rejects.toBeInstanceOf(NotFoundError);
      expect(await client.usage.retrieve({ userId: user })).toMatchObject({ objects: 0, bytes: 0 });
    });
  });

  describe('lifecycle and usage', () => {
    it('pins, unpins and deletes, and usage follows', async () => {
      const user = uniqueUser('sdk');
      const png = await pngImage(2012);
      const jpeg = await jpegImage(2013);
      const before = await client.usage.retrieve({ userId: user });
      expect(before).toMatchObject({ objects: 0, bytes: 0 });

      const a = await client.media.ingestDataUrl(dataUrl(png), {}, { userId: user });
      const b = await client.media.upload(jpeg, {}, { userId: user });
      expect(await client.usage.retrieve({ userId: user })).toMatchObject({ objects: 2, bytes: png.length + jpeg.length });

      expect(await client.media.pin(a.id, { userId: user })).toMatchObject({ id: a.id, pinned: true, retention_until: null });
      expect(await client.media.metadata(a.id, { userId: user })).toMatchObject({ pinned: true, retention_until: null });
      expect(await client.media.unpin(a.id, { userId: user })).toMatchObject({ id: a.id, pinned: false });
      const unpinned = await client.media.metadata(a.id, { userId: user });
      expect(unpinned.pinned).toBe(false);
      expect(Date.parse(unpinned.retention_until!)).toBeGreaterThan(Date.now());

      await client.media.delete(b.id, { userId: user });
      await expect(client.media.metadata(b.id, { userId: user })).rejects.toBeInstanceOf(NotFoundError);
      // Only a retry may turn a 404 into success: a second, separate delete reports it.
      await expect(client.media.delete(b.id, { userId: user })).rejects.toBeInstanceOf(NotFoundError);
      expect(await client.usage.retrieve({ userId: user })).toMatchObject({ objects: 1, bytes: png.length });
    });

    it('keeps owners apart: another user gets the 404 of a missing id', async () => {
      const owner = uniqueUser('sdk');
      const { id } = await client.media.ingestDataUrl(dataUrl(await pngImage(2014)), {}, { userId: owner });
      const stranger = uniqueUser('sdk');
      for (const call of [
        () => client.media.metadata(id, { userId: stranger }),
        () => client.media.presign(id, {}, { userId: stranger }),
        () => client.media.download(id, { userId: stranger }),
        () => client.media.pin(id, { userId: stranger }),
        () => client.media.delete(id, { userId: stranger }),
      ]) {
        const error = await call().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(NotFoundError);
        expect((error as NotFoundError).code).toBe('media_not_found');
      }
      expect((await client.media.metadata(id, { userId: owner })).id).toBe(id);
    });
  });

  describe('typed errors', () => {
    it('NotFoundError carries status, code and the request id the service logged', async () => {
      const error = await client.media.metadata('jan_01hqr8v9k2x3f4g5h6j7k8m9n0', { userId: uniqueUser('sdk') }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(NotFoundError);
      const notFound = error as NotFoundError;
      expect(notFound.status).toBe(404);
      expect(notFound.code).toBe('media_not_found');
      expect(notFound.requestId).toMatch(/\S/);
      expect(notFound.headers.get('x-request-id')).toBe(notFound.requestId);

      const traced = await client.media
        .metadata('jan_nonexistent123', { userId: uniqueUser('sdk'), headers: { 'x-request-id': 'sdk-e2e-req-1' } })
        .catch((e: unknown) => e);
      expect((traced as NotFoundError).requestId).toBe('sdk-e2e-req-1');
    });

    it('AuthenticationError for a wrong service key, without retrying it', async () => {
      const wrong = client.withOptions({ serviceKey: 'not-the-service-key-0123456789' });
      const error = await wrong.media.resolvePayload({ a: 1 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AuthenticationError);
      expect((error as AuthenticationError).status).toBe(401);
      expect((error as AuthenticationError).code).toBe('unauthorized');
    });

    it('UnsupportedMediaTypeError for an SVG, whatever type it claims', async () => {
      const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>');
      const user = uniqueUser('sdk');
      for (const attempt of [
        () => client.media.ingestDataUrl(dataUrl(svg, 'image/svg+xml'), {}, { userId: user }),
        () => client.media.upload(svg, { filename: 'x.png', mimeType: 'image/png' }, { userId: user }),
      ]) {
        const error = await attempt().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(UnsupportedMediaTypeError);
        expect((error as UnsupportedMediaTypeError).code).toBe('unsupported_media_type');
      }
    });

    it('PayloadTooLargeError from a service with a small MEDIA_MAX_BYTES', async () => {
      const small = await startTestApp({ env: { MEDIA_MAX_BYTES: '2KiB' } });
      try {
        const tiny = new MediaClient({ baseURL: small.baseUrl, serviceKey: SERVICE_KEY, env: {} });
        // Noise does not compress: a real PNG well over the limit.
        const big = await sharp(randomBytes(64 * 64 * 3), { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer();
        expect(big.length).toBeGreaterThan(2048);
        const user = uniqueUser('sdk');
        for (const attempt of [
          () => tiny.media.upload(big, { filename: 'big.png' }, { userId: user }),
          () => tiny.media.ingestDataUrl(dataUrl(big), {}, { userId: user }),
        ]) {
          const error = await attempt().catch((e: unknown) => e);
          expect(error).toBeInstanceOf(PayloadTooLargeError);
          expect((error as PayloadTooLargeError).code).toBe('payload_too_large');
        }
        expect(await tiny.usage.retrieve({ userId: user })).toMatchObject({ objects: 0 });
      } finally {
        await small.close();
      }
    });
  });

  describe('migration kit', () => {
    const chatBody = (images: string[]) => ({
      model: 'openai/gpt-4o',
      messages: [
        { role: 'system', content: 'be brief' },
        {
          role: 'user',
          content: [{ type: 'text', text: 'compare these' }, ...images.map((url) => ({ type: 'image_url', image_url: { url } }))],
        },
      ],
    });

    it('is a pass-through when MEDIA_CLIENT_ENABLED is off', async () => {
      const migration = createMediaMigration({ env: { MEDIA_CLIENT_ENABLED: 'false', MEDIA_API_URL: app.baseUrl } });
      const body = chatBody([dataUrl(await pngImage(2016))]);
      expect(migration.enabled).toBe(false);
      expect((await migration.dualWriteBody(body)).body).toBe(body);
      expect(await migration.resolveForProvider(body)).toBe(body);
      expect(migration.validateCutover(body)).toBe(body);
    });

    it('dual-writes a chat body, resolves it per provider, and passes cutover validation', async () => {
      const user = uniqueUser('llm');
      const png = await pngImage(2017);
      const latencies: Array<[number, ResolveLatencyMeta]> = [];
      const migration = createMediaMigration({
        client,
        enabled: true,
        cutover: 'enforce',
        onLatency: (ms, meta) => latencies.push([ms, meta]),
      });
      const legacy = chatBody([dataUrl(png), `${originUrl}/cat.png`]);

      const written = await migration.dualWriteBody(legacy, { userId: user });
      expect(written.legacyBody).toBe(legacy);
      expect(written.images).toHaveLength(2);
      for (const image of written.images) {
        expect(image.error).toBeUndefined();
        expect(image.ref).toBe(`data:image/png;${image.id}`);
      }
      expect(written.images.map((i) => i.legacyUrl)).toEqual([dataUrl(png), `${originUrl}/cat.png`]);
      const migrated = written.body;
      expect(migrated.messages[1]!.content).toHaveLength(3);
      expect(migration.validateCutover(migrated)).toBe(migrated);
      expect(() => migration.validateCutover(legacy)).toThrow(CutoverViolationError);

      const forOpenAI = await migration.resolveForProvider(migrated, { userId: user });
      const [, first, second] = forOpenAI.messages[1]!.content as Array<{ image_url: { url: string } }>;
      expect(Buffer.from(await (await fetch(first!.image_url.url)).arrayBuffer())).toEqual(png);
      expect(Buffer.from(await (await fetch(second!.image_url.url)).arrayBuffer())).toEqual(remotePng);

      const forBedrock = await migration.resolveForProvider({ ...migrated, model: 'bedrock/claude' }, { userId: user });
      const inline = forBedrock.messages[1]!.content as Array<{ image_url: { url: string } }>;
      expect(inline[1]!.image_url.url).toBe(dataUrl(png));
      expect(inline[2]!.image_url.url).toBe(dataUrl(remotePng));

      expect(latencies.map(([, meta]) => [meta.provider, meta.mode, meta.called, meta.ok])).toEqual([
        ['openai', 'url', true, true],
        ['bedrock', 'inline', true, true],
      ]);
      expect(latencies.every(([ms]) => ms >= 0)).toBe(true);

      // Dual-writing the same images again is idempotent through per-owner dedupe.
      const again = await migration.dualWriteBody(legacy, { userId: user });
      expect(again.images.map((i) => [i.id, i.deduped])).toEqual(written.images.map((i) => [i.id, true]));
    });

    it('resolves a placeholder written in upper case, as the service does, instead of passing it to the provider', async () => {
      const user = uniqueUser('llm');
      const png = await pngImage(2031);
      const migration = createMediaMigration({ client, enabled: true });
      const { id } = await client.media.ingestDataUrl(dataUrl(png), {}, { userId: user });
      const body = chatBody([`DATA:IMAGE/PNG;${id.toUpperCase()}`, `data:image/png;base64,JAN_${id.slice(4)}`]);
      const resolved = await migration.resolveForProvider(body, { userId: user });
      const [, first, second] = resolved.messages[1]!.content as Array<{ image_url: { url: string } }>;
      for (const image of [first!, second!]) {
        expect(image.image_url.url).toMatch(/^http:\/\//);
        expect(Buffer.from(await (await fetch(image.image_url.url)).arrayBuffer())).toEqual(png);
      }
    });

    it('dual-writes an Anthropic-style base64 block and resolves it back to a valid block in both modes', async () => {
      const user = uniqueUser('llm');
      const jpeg = await jpegImage(2019, 24);
      const migration = createMediaMigration({ client, enabled: true, cutover: 'enforce' });
      const legacy = {
        model: 'anthropic/claude-sonnet-4',
        messages: [
          { role: 'user', content: 'earlier turn' },
          {
            role: 'user',
            content: [
              { type: 'text', text: 'what is this?' },
              { type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: jpeg.toString('base64') } },
            ],
          },
        ],
      };
      expect(migration.findCutoverViolations(legacy).map((v) => v.path)).toEqual(['messages[1].content[1].source.data']);

      const written = await migration.dualWriteBody(legacy, { userId: user });
      expect(written.images).toHaveLength(1);
      const [image] = written.images;
      expect(image).toMatchObject({ path: 'messages[1].content[1].source.data', legacyUrl: jpeg.toString('base64') });
      expect(image!.error).toBeUndefined();
      expect(image!.ref).toBe(`data:image/jpeg;${image!.id}`);
      expect(await client.media.metadata(image!.id!, { userId: user })).toMatchObject({ mime: 'image/jpeg', bytes: jpeg.length });
      expect(migration.validateCutover(written.body)).toBe(written.body);

      const forAnthropic = await migration.resolveForProvider(written.body, { userId: user });
      const urlBlock = (forAnthropic.messages[1]!.content as unknown[])[1] as { type: string; source: { type: string; url: string } };
      expect(urlBlock).toEqual({ type: 'image', source: { type: 'url', url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:/) } });
      expect(Buffer.from(await (await fetch(urlBlock.source.url)).arrayBuffer())).toEqual(jpeg);

      const forBedrock = await migration.resolveForProvider(written.body, { userId: user, provider: 'bedrock' });
      expect(forBedrock.messages[1]!.content[1]).toEqual(legacy.messages[1]!.content[1]);
    });

    /** A fresh user with a real PNG and a real JPEG uploaded, and a kit that enforces the cutover. */
    async function geminiFixture(seed: number) {
      const user = uniqueUser('llm');
      const png = await pngImage(seed, 32);
      const jpeg = await jpegImage(seed + 1, 24);
      const migration = createMediaMigration({ client, enabled: true, cutover: 'enforce' });
      const uploaded = await client.media.upload(png, { filename: 'cat.png' }, { userId: user });
      const other = await client.media.upload(jpeg, { filename: 'dog.jpg' }, { userId: user });
      return { user, png, jpeg, migration, uploaded, other };
    }

    it('resolves a Gemini-native body to bare base64 of the exact uploaded bytes, in either mode', async () => {
      const { user, png, jpeg, migration, uploaded, other } = await geminiFixture(2020);
      const body = {
        contents: [
          {
            role: 'user',
            parts: [
              { text: 'compare these' },
              // The placeholder claims JPEG; the answer carries the stored object's type.
              { inline_data: { mime_type: 'image/jpeg', data: `data:image/jpeg;${uploaded.id}` } },
              { inlineData: { mimeType: 'image/jpeg', data: `data:image/jpeg;base64,${other.id}` } },
            ],
          },
        ],
        generationConfig: { temperature: 0 },
      };
      const snapshot = structuredClone(body);
      expect(migration.validateCutover(body)).toBe(body);

      for (const options of [{ provider: 'gemini' }, { provider: 'openai' }, { provider: 'vertex', mode: 'url' as const }]) {
        const out = await migration.resolveForProvider(body, { ...options, userId: user });
        const [text, snake, camel] = out.contents[0]!.parts as [unknown, { inline_data: Record<string, string> }, { inlineData: Record<string, string> }];
        expect(text).toEqual({ text: 'compare these' });
        expect(Object.keys(snake.inline_data)).toEqual(['mime_type', 'data']);
        expect(snake.inline_data.mime_type).toBe('image/png');
        expect(snake.inline_data.data).not.toMatch(/^data:/);
        expect(Buffer.from(snake.inline_data.data!, 'base64')).toEqual(png);
        expect(Object.keys(camel.inlineData)).toEqual(['mimeType', 'data']);
        expect(camel.inlineData.mimeType).toBe('image/jpeg');
        expect(Buffer.from(camel.inlineData.data!, 'base64')).toEqual(jpeg);
        expect(out.generationConfig).toEqual({ temperature: 0 });
      }
      expect(body).toEqual(snapshot);

      // A legacy Gemini body with raw bytes: dual-write ingests the image part, cutover passes, and
      // the resolved part is the legacy one again (a PDF part is not an image and stays as it was).
      const pdf = { inline_data: { mime_type: 'application/pdf', data: Buffer.from('%PDF-1.4\n').toString('base64') } };
      const legacy = { contents: [{ role: 'user', parts: [{ inline_data: { mime_type: 'image/png', data: png.toString('base64') } }, pdf] }] };
      expect(migration.findCutoverViolations(legacy).map((v) => [v.path, v.kind])).toEqual([['contents[0].parts[0].inline_data.data', 'raw_base64']]);
      const written = await migration.dualWriteBody(legacy, { userId: user });
      expect(written.images).toEqual([
        expect.objectContaining({ path: 'contents[0].parts[0].inline_data.data', id: uploaded.id, deduped: true, legacyUrl: png.toString('base64') }),
      ]);
      expect(migration.validateCutover(written.body)).toBe(written.body);
      expect(await migration.resolveForProvider(written.body, { userId: user, provider: 'gemini' })).toEqual(legacy);
    });

    it('turns a Gemini file_data part holding a placeholder into inline_data with the exact uploaded bytes, in either mode', async () => {
      const { user, png, jpeg, migration, uploaded, other } = await geminiFixture(2022);
      const geminiFile = { file_data: { mime_type: 'image/png', file_uri: 'https://generativelanguage.googleapis.com/v1beta/files/abc' } };
      const body = {
        contents: [
          {
            role: 'user',
            parts: [
              { text: 'what is in these?' },
              // The placeholder claims JPEG; the answer carries the stored object's type.
              { file_data: { mime_type: 'image/jpeg', file_uri: `data:image/jpeg;${uploaded.id}` } },
              { fileData: { mimeType: 'image/png', fileUri: `data:image/png;base64,${other.id}` } },
              geminiFile,
            ],
          },
        ],
        generationConfig: { temperature: 0 },
      };
      const snapshot = structuredClone(body);
      expect(migration.validateCutover(body)).toBe(body);

      for (const options of [{ provider: 'gemini' }, { provider: 'openai' }, { mode: 'url' as const }]) {
        const out = await migration.resolveForProvider(body, { ...options, userId: user });
        const [text, snake, camel, untouched] = out.contents[0]!.parts as unknown as [unknown, Record<string, Record<string, string>>, Record<string, Record<string, string>>, unknown];
        expect(text).toEqual({ text: 'what is in these?' });
        expect(Object.keys(snake)).toEqual(['inline_data']);
        expect(Object.keys(snake['inline_data']!)).toEqual(['mime_type', 'data']);
        expect(snake['inline_data']!['mime_type']).toBe('image/png');
        expect(snake['inline_data']!['data']).not.toMatch(/^data:/);
        expect(Buffer.from(snake['inline_data']!['data']!, 'base64')).toEqual(png);
        expect(Object.keys(camel)).toEqual(['inlineData']);
        expect(Object.keys(camel['inlineData']!)).toEqual(['mimeType', 'data']);
        expect(camel['inlineData']!['mimeType']).toBe('image/jpeg');
        expect(Buffer.from(camel['inlineData']!['data']!, 'base64')).toEqual(jpeg);
        expect(untouched).toEqual(geminiFile);
        expect(out.generationConfig).toEqual({ temperature: 0 });
      }
      expect(body).toEqual(snapshot);
    });

    it('keeps the inline caps for Gemini parts in URL mode too: 413 inline_too_large, thrown', async () => {
      const small = await startTestApp({ env: { MEDIA_RESOLVE_INLINE: 'true', MEDIA_RESOLVE_INLINE_MAX_IMAGE_BYTES: '2KiB' } });
      try {
        const tiny = new MediaClient({ baseURL: small.baseUrl, serviceKey: SERVICE_KEY, env: {} });
        const user = uniqueUser('llm');
        const big = await noisyPng(48);
        expect(big.length).toBeGreaterThan(2048);
        const { id } = await tiny.media.upload(big, { filename: 'big.png' }, { userId: user });
        const migration = createMediaMigration({ client: tiny, enabled: true });
        const body = { contents: [{ role: 'user', parts: [{ inline_data: { mime_type: 'image/png', data: `data:image/png;${id}` } }] }] };
        for (const provider of ['gemini', 'openai']) {
          const error = await migration.resolveForProvider(body, { provider, userId: user }).catch((e: unknown) => e);
          expect(error).toBeInstanceOf(PayloadTooLargeError);
          expect((error as PayloadTooLargeError).code).toBe('inline_too_large');
        }
      } finally {
        await small.close();
      }
    });

    it('reports dual-write failures without throwing, and surfaces resolve failures to the latency hook', async () => {
      const errors: unknown[] = [];
      const broken = createMediaMigration({
        enabled: true,
        client: client.withOptions({ serviceKey: 'not-the-service-key-0123456789' }),
        onError: (error) => errors.push(error),
      });
      const input = dataUrl(await pngImage(2018));
      const result = await broken.dualWriteIngest(input, { userId: uniqueUser('llm') });
      expect(result).toMatchObject({ ref: null, id: null, legacyUrl: input });
      expect(result.error).toBeInstanceOf(AuthenticationError);
      expect(errors).toHaveLength(1);

      const reporting = createMediaMigration({ enabled: true, client, onError: (error) => errors.push(error) });
      const svgBody = chatBody(['data:image/svg+xml;base64,PHN2Zy8+']);
      const svg = await reporting.dualWriteBody(svgBody, { userId: uniqueUser('llm') });
      expect(svg.images[0]!.ref).toBeNull();
      expect(svg.images[0]!.error).toBeInstanceOf(UnsupportedMediaTypeError);
      expect(svg.body).toEqual(svgBody);
      expect(errors).toHaveLength(2);

      const metas: ResolveLatencyMeta[] = [];
      const good = createMediaMigration({ enabled: true, client, onLatency: (_ms, meta) => metas.push(meta) });
      const body = chatBody(['data:image/png;jan_01hqr8v9k2x3f4g5h6j7k8m9n0']);
      await expect(good.resolveForProvider(body, { userId: uniqueUser('llm') })).rejects.toBeInstanceOf(NotFoundError);
      expect(metas).toEqual([expect.objectContaining({ called: true, ok: false, error: expect.any(NotFoundError) })]);
      const untouched = await good.resolveForProvider(chatBody([]), { userId: uniqueUser('llm') });
      expect(untouched).toEqual(chatBody([]));
      expect(metas[1]).toMatchObject({ called: false, ok: true });
    });

    it('cutover validation lists every raw image with its path', () => {
      const body = {
        messages: [
          { role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==' } }] },
          { role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://cdn.example/cat.png?sig=secret' } }] },
          { role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;jan_01hqr8v9k2x3f4g5h6j7k8m9n0' } }] },
        ],
      };
      const error = (() => {
        try {
          validateCutover(body);
        } catch (e) {
          return e;
        }
        return undefined;
      })() as CutoverViolationError;
      expect(error).toBeInstanceOf(CutoverViolationError);
      expect(error.violations.map((v) => [v.path, v.kind])).toEqual([
        ['messages[0].content[0].image_url.url', 'raw_base64'],
        ['messages[1].content[0].image_url.url', 'external_url'],
      ]);
      expect(error.message).not.toContain('secret');
    });
  });

  describe('known defects of the SDK (unresolved list, deep payloads, embedded placeholders)', () => {
    const missing = 'jan_01hqr8v9k2x3f4g5h6j7k8m9n0';

    /** `levels` nested `{ a: [ … ] }` around `leaf`, built and read without recursion. */
    function nest(leaf: unknown, levels: number): unknown {
      let node = leaf;
      for (let i = 0; i < levels; i++) node = { a: [node] };
      return node;
    }
    function bottom(node: unknown, levels: number): unknown {
      let current = node;
      for (let i = 0; i < levels; i++) current = (current as { a: unknown[] }).a[0];
      return current;
    }

    it('hands the caller the ids the service left unresolved', async () => {
      const user = uniqueUser('sdk');
      const { id } = await client.media.ingestDataUrl(dataUrl(await pngImage(2101)), {}, { userId: user });
      const payload = { images: [`data:image/png;${id}`, `data:image/png;${missing}`] };

      const result = await client.media.resolvePayloadResult(payload, { keepUnresolved: true }, { userId: user });
      expect(result.payload.images[0]).toMatch(/^http:\/\//);
      expect(result.payload.images[1]).toBe(`data:image/png;${missing}`);
      expect(result.unresolved).toEqual([missing]);
      const wire = await client.media.resolve({ payload, keep_unresolved: true }, { userId: user });
      expect(wire.unresolved).toEqual([missing]);
      const clean = await client.media.resolvePayloadResult({ image: `data:image/png;${id}` }, {}, { userId: user });
      expect(clean.unresolved).toEqual([]);

      const migration = createMediaMigration({ client, enabled: true });
      const reported: string[][] = [];
      const body = { model: 'openai/gpt-4o', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: payload.images[1] } }] }] };
      const out = await migration.resolveForProvider(body, { userId: user, keepUnresolved: true, onUnresolved: (ids) => reported.push(ids) });
      expect(out).toEqual(body);
      expect(reported).toEqual([[missing]]);
    });

    it('resolves a payload nested 20 000 levels deep, as the service does, and checks it without a stack overflow', async () => {
      const user = uniqueUser('sdk');
      const { id } = await client.media.ingestDataUrl(dataUrl(await pngImage(2102)), {}, { userId: user });
      const levels = 20_000;
      const payload = nest({ type: 'image_url', image_url: { url: `data:image/png;${id}` } }, levels);

      const resolved = await client.media.resolvePayload(payload, {}, { userId: user });
      expect((bottom(resolved, levels) as { image_url: { url: string } }).image_url.url).toMatch(/^http:\/\/127\.0\.0\.1:/);

      const migration = createMediaMigration({ client, enabled: true, cutover: 'enforce' });
      const body = { model: 'openai/gpt-4o', messages: [{ role: 'user', content: payload }] };
      expect(migration.findCutoverViolations(body)).toEqual([]);
      const forProvider = await migration.resolveForProvider(body, { userId: user });
      const leaf = bottom(forProvider.messages[0]!.content, levels) as { image_url: { url: string } };
      expect(leaf.image_url.url).toMatch(/^http:\/\/127\.0\.0\.1:/);

      const raw = { model: 'openai/gpt-4o', messages: [{ role: 'user', content: nest({ type: 'image_url', image_url: { url: dataUrl(await pngImage(2103)) } }, levels) }] };
      const written = await migration.dualWriteBody(raw, { userId: user });
      expect(written.images).toHaveLength(1);
      expect(written.images[0]!.id).toMatch(/^jan_/);
    });

    it('leaves a placeholder inside a longer Gemini file_uri alone and reports it, instead of writing a data URL into the URI', async () => {
      const user = uniqueUser('sdk');
      const { id } = await client.media.ingestDataUrl(dataUrl(await pngImage(2104)), {}, { userId: user });
      const uri = `gs://bucket/uploads/data:image/png;${id}`;
      const body = {
        contents: [{ role: 'user', parts: [{ text: `see data:image/png;${id}` }, { file_data: { mime_type: 'image/png', file_uri: uri } }] }],
      };
      const migration = createMediaMigration({ client, enabled: true });

      for (const provider of ['gemini', 'openai']) {
        const error = await migration.resolveForProvider(body, { userId: user, provider }).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(UnresolvablePlaceholderError);
        expect(error).toMatchObject({ code: 'placeholder_not_bare', ids: [id], paths: ['contents[0].parts[1].file_data.file_uri'] });

        const reported: string[][] = [];
        const out = await migration.resolveForProvider(body, { userId: user, provider, keepUnresolved: true, onUnresolved: (ids) => reported.push(ids) });
        const [text, file] = out.contents[0]!.parts as [{ text: string }, { file_data: { file_uri: string } }];
        // Any other string is resolved in place, as the service resolves it.
        expect(text.text).toMatch(provider === 'gemini' ? /^see data:image\/png;base64,/ : /^see http:\/\/127\.0\.0\.1:/);
        expect(file.file_data.file_uri).toBe(uri);
        expect(reported).toEqual([[id]]);
      }
    });
  });
});
