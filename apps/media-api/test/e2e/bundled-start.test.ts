import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startBuiltService, type BuiltService } from '../support/built-service';
import { dataUrl, pngImage, uniqueUser } from '../support/images';
import { SERVICE_KEY, startTestApp, type TestApp } from '../support/test-app';

const BUNDLE_DIR = join(__dirname, '../../dist/bundle');

/**
 * `node dist/start.js` runs the one-file bundle of the app (scripts/bundle.mjs) with V8's code
 * cache. What bundling can break: paths found relative to a package's own files (the embedded
 * database's worker, swagger-ui's assets), packages left outside it (sharp, the OpenTelemetry SDK),
 * and metadata read from class names (Nest's providers, the OpenAPI schemas).
 */
describe('the bundled service (dist/start.js)', () => {
  let bundled: BuiltService;
  let unbundled: TestApp;

  beforeAll(async () => {
    bundled = await startBuiltService({ LOG_LEVEL: 'warn' });
    unbundled = await startTestApp();
  });
  afterAll(async () => {
    await bundled?.stop();
    await unbundled?.close();
  });

  const call = (path: string, init: RequestInit & { user?: string } = {}) =>
    fetch(bundled.baseUrl + path, {
      ...init,
      headers: { 'x-media-service-key': SERVICE_KEY, 'content-type': 'application/json', ...(init.user ? { 'x-jan-user-id': init.user } : {}) },
    });

  it('ingests, decodes, serves and resolves an image', async () => {
    const user = uniqueUser('bundle');
    const png = await pngImage(4242, 24);
    const ingest = await call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(png) } }) });
    expect(ingest.status).toBe(200);
    const { id } = (await ingest.json()) as { id: string };
    const served = await call(`/v1/media/${id}`, { user });
    expect(served.status).toBe(200);
    expect(Buffer.from(await served.arrayBuffer())).toEqual(png);
    const resolved = await call('/v1/media/resolve', { method: 'POST', user, body: JSON.stringify({ payload: { image: `data:image/png;${id}` } }) });
    expect(resolved.status).toBe(200);
    const url = ((await resolved.json()) as { payload: { image: string } }).payload.image;
    expect(Buffer.from(await (await fetch(url)).arrayBuffer())).toEqual(png);
  });

  it('validates bodies with the DTOs\' rules (class-validator\'s metadata is the one the pipe reads)', async () => {
    const response = await call('/v1/media/prepare-upload', { method: 'POST', user: uniqueUser('bundle'), body: JSON.stringify({ mime_type: 'image/png', bytes: 'many' }) });
    expect(response.status).toBe(400);
    expect((await response.json()) as { code: string; error: string }).toMatchObject({ code: 'invalid_request', error: expect.stringContaining('bytes') });
  });

  it('serves the same OpenAPI document as the unbundled app, and swagger-ui with its assets', async () => {
    const documentOf = async (baseUrl: string) => {
      const doc = (await (await fetch(`${baseUrl}/docs/openapi.json`)).json()) as { paths: unknown; components: unknown };
      return { paths: doc.paths, components: doc.components };
    };
    expect(await documentOf(bundled.baseUrl)).toEqual(await documentOf(unbundled.baseUrl));
    const page = await fetch(`${bundled.baseUrl}/docs`);
    expect(page.status).toBe(200);
    const asset = (await page.text()).match(/src="\.\/docs\/(swagger-ui-bundle\.js)"/)?.[1];
    expect(asset).toBe('swagger-ui-bundle.js');
    const script = await fetch(`${bundled.baseUrl}/docs/${asset}`);
    expect(script.status).toBe(200);
    expect((await script.arrayBuffer()).byteLength).toBeGreaterThan(100_000);
  });

  it('comes with the code cache the build made for it, and the running service writes none', async () => {
    const { sha256 } = JSON.parse(readFileSync(join(BUNDLE_DIR, 'manifest.json'), 'utf8')) as { sha256: string };
    expect(sha256).toMatch(/^[0-9a-f]{64}$/);
    const before = readdir(join(BUNDLE_DIR, '.cache'));
    expect(before.filter((f) => f.endsWith('.v8'))).toHaveLength(1);
    expect(before.filter((f) => !f.endsWith('.v8'))).toEqual([]);
    await call('/readyz');
    expect(readdir(join(BUNDLE_DIR, '.cache'))).toEqual(before);

    // V8 takes it under the service's own flags (src/v8-flags.ts), as dist/start.js compiles it.
    const check = spawnSync(
      process.execPath,
      [
        '-e',
        `require(process.argv[1]).applyV8Flags();
         const { readFileSync } = require('node:fs');
         const script = new (require('node:vm').Script)(readFileSync(process.argv[2], 'latin1'), { filename: process.argv[2], cachedData: readFileSync(process.argv[3]) });
         process.stdout.write(String(script.cachedDataRejected));`,
        join(BUNDLE_DIR, '../v8-flags.js'),
        join(BUNDLE_DIR, 'app.js'),
        join(BUNDLE_DIR, '.cache', before[0]!),
      ],
      { env: { PATH: process.env.PATH }, encoding: 'utf8' },
    );
    expect(check.stderr).toBe('');
    expect(check.stdout).toBe('false');
  });
});


/**
 * The S3 and GCS adapters stay outside the bundle and load @jan/domain from node_modules, as the
 * bundle does: one DomainError class, so their refusals keep their codes (not a 500).
 */
describe('the bundled service on the S3 adapter', () => {
  let service: BuiltService;
  beforeAll(async () => {
    service = await startBuiltService({
      LOG_LEVEL: 'silent',
      MEDIA_STORAGE_BACKEND: 's3',
      MEDIA_S3_BUCKET: required('TEST_S3_BUCKET'),
      MEDIA_S3_ENDPOINT: required('TEST_S3_ENDPOINT'),
      MEDIA_S3_REGION: process.env.TEST_S3_REGION ?? 'us-east-1',
      MEDIA_S3_USE_PATH_STYLE: 'true',
      // s3rver answers InvalidAccessKeyId: the adapter's storage_unavailable must reach the client.
      MEDIA_S3_ACCESS_KEY_ID: 'UNKNOWNKEY',
      MEDIA_S3_SECRET_ACCESS_KEY: 'not-the-secret',
    });
  });
  afterAll(async () => {
    await service?.stop();
  });

  it('answers a storage failure inside the adapter with its code, 503 storage_unavailable', async () => {
    const response = await fetch(`${service.baseUrl}/v1/media`, {
      method: 'POST',
      headers: { 'x-media-service-key': SERVICE_KEY, 'x-jan-user-id': uniqueUser('bundle-s3'), 'content-type': 'application/json' },
      body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(await pngImage(4343)) } }),
    });
    expect(response.status).toBe(503);
    const body = (await response.json()) as { code: string; details?: unknown };
    expect(body.code).toBe('storage_unavailable');
    // Which provider and operation failed is logged for operators, not told to clients.
    expect(body.details).toBeUndefined();
  });
});

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the suite with \`pnpm test\` (scripts/test.mjs starts the S3 stand-in)`);
  return value;
}

function readdir(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir) : [];
}
