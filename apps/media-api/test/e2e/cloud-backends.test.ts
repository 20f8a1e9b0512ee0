import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestApp, type TestApp } from '../support/test-app';
import { dataUrl, jpegImage, pngImage, uniqueUser } from '../support/images';
import { statedExpiry } from '@jan/domain/testing';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the suite with \`pnpm test\` (scripts/test.mjs starts the S3 and GCS stand-ins)`);
  return value;
}

/** The app on the S3 adapter (s3rver) and the GCS adapter (firebase-tools emulator). */
describe('cloud storage backends end to end', () => {
  describe('S3 (s3rver)', () => {
    let app: TestApp;
    beforeAll(async () => {
      app = await startTestApp({
        env: {
          MEDIA_STORAGE_BACKEND: 's3',
          MEDIA_S3_BUCKET: required('TEST_S3_BUCKET'),
          MEDIA_S3_ENDPOINT: required('TEST_S3_ENDPOINT'),
          MEDIA_S3_REGION: process.env.TEST_S3_REGION ?? 'us-east-1',
          MEDIA_S3_USE_PATH_STYLE: 'true',
          MEDIA_S3_ACCESS_KEY_ID: required('TEST_S3_ACCESS_KEY_ID'),
          MEDIA_S3_SECRET_ACCESS_KEY: required('TEST_S3_SECRET_ACCESS_KEY'),
          MEDIA_S3_KMS_KEY_ID: 'alias/jan-media-test',
          MEDIA_MAX_BYTES: '1MiB',
        },
      });
    });
    afterAll(async () => {
      await app?.close();
    });

    it('is ready, ingests, serves through the proxy and hands out presigned URLs that work', async () => {
      expect((await app.call('/readyz', { key: null })).status).toBe(200);
      const user = uniqueUser();
      const png = await pngImage(300);
      const res = await app.call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(png) } }) });
      expect(res.status).toBe(200);
      const body = (await res.json()) as any;
      expect(body.url).toContain(required('TEST_S3_ENDPOINT'));
      expect(body.url).toContain('X-Amz-Signature=');
      // Freshly signed: the TTL to the second, and the expiry the URL itself states.
      expect(body.expires_in).toBe(900);
      expect(Date.parse(body.expires_at)).toBe(statedExpiry(body.url).getTime());
      expect(Buffer.from(await (await fetch(body.url)).arrayBuffer())).toEqual(png);
      const proxied = await app.call(`/v1/media/${body.id}`, { user });
      expect(Buffer.from(await proxied.arrayBuffer())).toEqual(png);
      expect(JSON.stringify(await (await app.call(`/v1/media/${body.id}/metadata`, { user })).json())).not.toContain(required('TEST_S3_BUCKET'));
    });

    it('runs a verified direct upload: prepare → PUT with plain HTTP → complete → GET → resolve', async () => {
      const user = uniqueUser();
      const png = await pngImage(301);
      const sha256 = createHash('sha256').update(png).digest('hex');
      const prepared = (await (
        await app.call('/v1/media/prepare-upload', { method: 'POST', user, body: JSON.stringify({ mime_type: 'image/png', bytes: png.length, sha256 }) })
      ).json()) as any;
      expect(prepared.upload_url).toContain('X-Amz-Signature=');
      const put = await fetch(prepared.upload_url, { method: 'PUT', headers: prepared.headers, body: png });
      expect(put.status).toBe(200);
      const done = await app.call(`/v1/media/${prepared.id}/complete`, { method: 'POST', user });
      expect(done.status).toBe(200);
      expect((await done.json()) as any).toMatchObject({ id: prepared.id, bytes: png.length, sha256, deduped: false });
      const got = await app.call(`/v1/media/${prepared.id}`, { user });
      expect(Buffer.from(await got.arrayBuffer())).toEqual(png);

      // The presigned PUT stays valid until it expires, and the bucket takes a second PUT. It
      // lands at the upload key: the object is what complete checked and wrote itself.
      const bucket = `${required('TEST_S3_ENDPOINT')}/${required('TEST_S3_BUCKET')}`;
      expect((await fetch(`${bucket}/uploads/${prepared.id}.png`)).status).toBeGreaterThanOrEqual(400);
      const other = await pngImage(399);
      const headers = { ...prepared.headers, 'content-length': String(other.length) };
      delete headers['x-amz-checksum-sha256'];
      await fetch(prepared.upload_url, { method: 'PUT', headers, body: other });
      const again = await app.call(`/v1/media/${prepared.id}`, { user });
      expect(Buffer.from(await again.arrayBuffer())).toEqual(png);
      const resolved = (await (
        await app.call('/v1/media/resolve', { method: 'POST', user, body: JSON.stringify({ payload: { u: `data:image/png;${prepared.id}` } }) })
      ).json()) as any;
      expect(Buffer.from(await (await fetch(resolved.payload.u)).arrayBuffer())).toEqual(png);
    });

    it('runs a direct upload through a presigned POST (browser form upload)', async () => {
      const user = uniqueUser();
      const png = await pngImage(310);
      const prepared = (await (
        await app.call('/v1/media/prepare-upload', { method: 'POST', user, body: JSON.stringify({ mime_type: 'image/png', method: 'POST' }) })
      ).json()) as any;
      expect(prepared.method).toBe('POST');
      expect(prepared.fields).toMatchObject({ key: `uploads/${prepared.id}.png`, Policy: expect.any(String), 'X-Amz-Signature': expect.any(String) });
      const policy = JSON.parse(Buffer.from(prepared.fields.Policy, 'base64').toString('utf8'));
      expect(policy.conditions).toEqual(expect.arrayContaining([['content-length-range', 1, 1024 * 1024]]));
      const form = new FormData();
      for (const [name, value] of Object.entries(prepared.fields as Record<string, string>)) form.append(name, value);
      form.append('file', new Blob([png], { type: 'image/png' }), 'x.png');
      const posted = await fetch(prepared.upload_url, { method: 'POST', body: form });
      expect(posted.status).toBeLessThan(300);
      const done = await app.call(`/v1/media/${prepared.id}/complete`, { method: 'POST', user });
      expect(done.status).toBe(200);
      const got = await app.call(`/v1/media/${prepared.id}`, { user });
      expect(Buffer.from(await got.arrayBuffer())).toEqual(png);
    });

    it('refuses wrong-type, wrong-checksum, wrong-size and oversize direct uploads and leaves nothing behind', async () => {
      const user = uniqueUser();
      const sized = await pngImage(304);
      const cases: { declare: Record<string, unknown>; send: Buffer; code: string; details?: Record<string, unknown> }[] = [
        { declare: { mime_type: 'image/png' }, send: await jpegImage(5), code: 'type_mismatch' },
        { declare: { mime_type: 'image/png', bytes: sized.length - 1 }, send: sized, code: 'size_mismatch', details: { declared_bytes: sized.length - 1, received_bytes: sized.length } },
        { declare: { mime_type: 'image/png', sha256: 'a'.repeat(64) }, send: await pngImage(302), code: 'checksum_mismatch' },
        { declare: { mime_type: 'image/png' }, send: Buffer.concat([await pngImage(303), Buffer.alloc(1_100_000)]), code: 'payload_too_large' },
      ];
      for (const c of cases) {
        const prepared = (await (await app.call('/v1/media/prepare-upload', { method: 'POST', user, body: JSON.stringify(c.declare) })).json()) as any;
        // s3rver does not enforce signed checksums or lengths; the service's complete step must.
        const headers = { ...prepared.headers };
        delete headers['x-amz-checksum-sha256'];
        delete headers['content-length'];
        await fetch(prepared.upload_url, { method: 'PUT', headers, body: c.send });
        const done = await app.call(`/v1/media/${prepared.id}/complete`, { method: 'POST', user });
        const body = (await done.json()) as any;
        expect(body.code).toBe(c.code);
        if (c.details) expect(body.details).toEqual(c.details);
        expect((await app.call(`/v1/media/${prepared.id}/metadata`, { user })).status).toBe(404);
        for (const key of [`images/${prepared.id}.png`, `uploads/${prepared.id}.png`]) {
          const s3Object = await fetch(`${required('TEST_S3_ENDPOINT')}/${required('TEST_S3_BUCKET')}/${key}`);
          expect(s3Object.status).toBeGreaterThanOrEqual(400);
        }
      }
    });

    it('refuses to complete before anything was uploaded, and keeps the reservation', async () => {
      const user = uniqueUser();
      const prepared = (await (await app.call('/v1/media/prepare-upload', { method: 'POST', user, body: JSON.stringify({ mime_type: 'image/png' }) })).json()) as any;
      const early = await app.call(`/v1/media/${prepared.id}/complete`, { method: 'POST', user });
      expect(early.status).toBe(409);
      expect(((await early.json()) as any).code).toBe('media_not_ready');
      expect(((await (await app.call(`/v1/media/${prepared.id}/metadata`, { user })).json()) as any).status).toBe('pending');
    });
  });

  describe('GCS (emulator)', () => {
    let app: TestApp;
    let keyDir: string;
    beforeAll(async () => {
      keyDir = await mkdtemp(join(tmpdir(), 'jan-media-gcs-key-'));
      const keyFile = join(keyDir, 'service-account.json');
      await writeFile(
        keyFile,
        JSON.stringify({
          type: 'service_account',
          project_id: process.env.TEST_GCS_PROJECT_ID ?? 'jan-media-test',
          client_email: required('TEST_GCS_CLIENT_EMAIL'),
          private_key: required('TEST_GCS_PRIVATE_KEY'),
        }),
        { mode: 0o600 },
      );
      app = await startTestApp({
        env: {
          MEDIA_STORAGE_BACKEND: 'gcs',
          MEDIA_GCS_BUCKET: required('TEST_GCS_BUCKET'),
          MEDIA_GCS_API_ENDPOINT: required('TEST_GCS_ENDPOINT'),
          MEDIA_GCS_KEY_FILE: keyFile,
          MEDIA_GCS_RESUMABLE: 'false',
        },
      });
    });
    afterAll(async () => {
      await app?.close();
      await rm(keyDir, { recursive: true, force: true });
    });

    it('ingests, serves through the proxy, resolves to V4-signed URLs and deletes', async () => {
      expect((await app.call('/readyz', { key: null })).status).toBe(200);
      const user = uniqueUser();
      const png = await pngImage(400);
      const body = (await (
        await app.call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(png) } }) })
      ).json()) as any;
      expect(body.url).toContain('X-Goog-Signature=');
      expect(body.expires_in).toBe(900);
      expect(Date.parse(body.expires_at)).toBe(statedExpiry(body.url).getTime());
      const proxied = await app.call(`/v1/media/${body.id}`, { user });
      expect(proxied.headers.get('content-type')).toBe('image/png');
      expect(Buffer.from(await proxied.arrayBuffer())).toEqual(png);
      expect((await app.call(`/v1/media/${body.id}`, { method: 'DELETE', user })).status).toBe(204);
      expect((await app.call(`/v1/media/${body.id}`, { user })).status).toBe(404);
    });

    // The emulator answers the XML API's signed PUT with 501, so direct uploads are checked
    // through the POST policy (browser form), which it takes (without checking the policy).
    async function postUpload(declare: Record<string, unknown>, bytes: Buffer, user: string): Promise<any> {
      const prepared = (await (
        await app.call('/v1/media/prepare-upload', { method: 'POST', user, body: JSON.stringify({ ...declare, method: 'POST' }) })
      ).json()) as any;
      expect(prepared.method).toBe('POST');
      const form = new FormData();
      for (const [name, value] of Object.entries(prepared.fields as Record<string, string>)) form.append(name, value);
      form.append('file', new Blob([bytes], { type: String(declare.mime_type) }), 'x');
      expect((await fetch(prepared.upload_url, { method: 'POST', body: form })).status).toBeLessThan(300);
      return prepared;
    }
    const gcsObject = (key: string) =>
      fetch(`${required('TEST_GCS_ENDPOINT')}/storage/v1/b/${required('TEST_GCS_BUCKET')}/o/${encodeURIComponent(key)}`);

    it('runs a verified direct upload through a POST policy: prepare → form POST → complete → GET, and removes the upload', async () => {
      const user = uniqueUser();
      const png = await pngImage(410);
      const sha256 = createHash('sha256').update(png).digest('hex');
      const prepared = await postUpload({ mime_type: 'image/png', bytes: png.length, sha256 }, png, user);
      expect(prepared.fields).toMatchObject({ key: `uploads/${prepared.id}.png` });
      expect((await gcsObject(`uploads/${prepared.id}.png`)).status).toBe(200);
      const done = await app.call(`/v1/media/${prepared.id}/complete`, { method: 'POST', user });
      expect(done.status).toBe(200);
      expect((await done.json()) as any).toMatchObject({ id: prepared.id, bytes: png.length, sha256, deduped: false });
      const got = await app.call(`/v1/media/${prepared.id}`, { user });
      expect(got.headers.get('content-type')).toBe('image/png');
      expect(Buffer.from(await got.arrayBuffer())).toEqual(png);
      expect((await gcsObject(`uploads/${prepared.id}.png`)).status).toBe(404);
      // A second complete answers the object the first made ready, and writes nothing.
      const again = await app.call(`/v1/media/${prepared.id}/complete`, { method: 'POST', user });
      expect(again.status).toBe(200);
      expect((await again.json()) as any).toMatchObject({ id: prepared.id, sha256 });
    });

    it('refuses wrong-type, wrong-checksum and wrong-size direct uploads and leaves nothing behind', async () => {
      const user = uniqueUser();
      const sized = await pngImage(404);
      const cases: { declare: Record<string, unknown>; send: Buffer; code: string }[] = [
        { declare: { mime_type: 'image/png' }, send: await jpegImage(6), code: 'type_mismatch' },
        { declare: { mime_type: 'image/png', bytes: sized.length - 1 }, send: sized, code: 'size_mismatch' },
        { declare: { mime_type: 'image/png', sha256: 'a'.repeat(64) }, send: await pngImage(402), code: 'checksum_mismatch' },
      ];
      for (const c of cases) {
        const prepared = await postUpload(c.declare, c.send, user);
        const done = await app.call(`/v1/media/${prepared.id}/complete`, { method: 'POST', user });
        expect(((await done.json()) as any).code).toBe(c.code);
        expect((await app.call(`/v1/media/${prepared.id}/metadata`, { user })).status).toBe(404);
        for (const key of [`images/${prepared.id}.png`, `uploads/${prepared.id}.png`]) expect((await gcsObject(key)).status).toBe(404);
      }
    });
  });
});
