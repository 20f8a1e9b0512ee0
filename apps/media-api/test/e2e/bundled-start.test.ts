import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBuiltService, type BuiltService } from '../support/built-service';
import { dataUrl, pngImage, uniqueUser } from '../support/images';
import { SERVICE_KEY, startTestApp, type TestApp } from '../support/test-app';

const BUNDLE_DIR = join(__dirname, '../../dist/bundle');
const REPO_ROOT = join(__dirname, '../../../..');
/** What scripts/bundle.mjs leaves outside the bundle and the service may load at run time. */
const LEFT_OUTSIDE = ['@jan/domain', '@jan/mediaid', 'sharp', 'swagger-ui-dist'];

/**
 * `node dist/start.js` runs the one-file bundle of the app (scripts/bundle.mjs) with V8's code
 * cache. What bundling can break: paths found relative to a package's own files (the embedded
 * database's worker, swagger-ui's assets), packages left outside it (sharp, the OpenTelemetry SDK),
 * and metadata read from class names (Nest's providers, the OpenAPI schemas).
 */
describe('the bundled service (dist/start.js)', () => {
  let bundled: BuiltService;
  let unbundled: TestApp;
  const loadsDir = mkdtempSync(join(tmpdir(), 'jan-media-loads-'));
  const loads = join(loadsDir, 'external-loads');

  beforeAll(async () => {
    bundled = await startBuiltService(
      { LOG_LEVEL: 'warn', JAN_TEST_EXTERNAL_LOADS: loads },
      { nodeArgs: ['-r', join(__dirname, '../support/external-loads.cjs')] },
    );
    unbundled = await startTestApp();
  });
  afterAll(async () => {
    await bundled?.stop();
    await unbundled?.close();
    rmSync(loadsDir, { recursive: true, force: true });
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

  it('loads from node_modules only what the build left outside it (no second copy of Nest, swagger or pg)', async () => {
    // @nestjs/terminus once loaded @nestjs/swagger by name for its own docs: a second swagger and a
    // second Nest, from node_modules, and half of every start. TypeORM loaded pg by name, which a
    // production install of the app does not have at the app's level.
    const user = uniqueUser('bundle');
    expect((await call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(await pngImage(4244)) } }) })).status).toBe(200);
    expect((await call('/docs')).status).toBe(200);
    expect((await call('/readyz')).status).toBe(200);
    const packages = [...new Set(readFileSync(loads, 'utf8').trim().split('\n').map(packageOf))].sort();
    expect(packages).toEqual(expect.arrayContaining(['@jan/domain', 'sharp', 'swagger-ui-dist']));
    expect(packages.filter((name) => !LEFT_OUTSIDE.includes(name))).toEqual([]);
  });

  it('comes with the code cache the build made for it, and the running service writes none', async () => {
    const { sha256 } = JSON.parse(readFileSync(join(BUNDLE_DIR, 'manifest.json'), 'utf8')) as { sha256: string };
    expect(sha256).toMatch(/^[0-9a-f]{64}$/);
    // Named as src/start.ts names it. (A turbo cache restore may leave an earlier build's beside it.)
    const cacheName = `${createHash('sha256').update(`${sha256}|${process.version}|${process.arch}`).digest('hex').slice(0, 32)}.v8`;
    const before = readdir(join(BUNDLE_DIR, '.cache'));
    expect(before).toContain(cacheName);
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
        join(BUNDLE_DIR, '.cache', cacheName),
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

/**
 * What the image ships (infra/Dockerfile): `pnpm deploy --prod`, the app's production dependencies
 * and nothing hoisted. The bundle must find everything it loads at run time from there.
 */
describe('the bundled service from a production install (pnpm deploy --prod)', () => {
  const deployDir = mkdtempSync(join(tmpdir(), 'jan-media-deploy-'));
  let service: BuiltService;
  beforeAll(async () => {
    const [command, ...args] = pnpmCommand();
    execFileSync(command!, [...args, 'deploy', '--filter=@jan/media-api', '--prod', '--offline', join(deployDir, 'app')], {
      cwd: REPO_ROOT,
      stdio: 'ignore',
    });
    // From the install's own directory, as the image runs it: TypeORM, for one, falls back to
    // `<cwd>/node_modules` for what it cannot find.
    service = await startBuiltService({ LOG_LEVEL: 'warn' }, { start: join(deployDir, 'app/dist/start.js'), cwd: join(deployDir, 'app') });
  }, 120_000);
  afterAll(async () => {
    await service?.stop();
    rmSync(deployDir, { recursive: true, force: true });
  });

  it('has none of the development dependencies, and starts, ingests and resolves on PostgreSQL', async () => {
    expect(existsSync(join(deployDir, 'app/node_modules/pg'))).toBe(false);
    expect(existsSync(join(deployDir, 'app/node_modules/esbuild'))).toBe(false);
    expect((await fetch(`${service.baseUrl}/readyz`)).status).toBe(200);
    const headers = { 'x-media-service-key': SERVICE_KEY, 'x-jan-user-id': uniqueUser('deploy'), 'content-type': 'application/json' };
    const png = await pngImage(4245, 20);
    const ingest = await fetch(`${service.baseUrl}/v1/media`, { method: 'POST', headers, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(png) } }) });
    expect(ingest.status).toBe(200);
    const { id } = (await ingest.json()) as { id: string };
    const resolved = await fetch(`${service.baseUrl}/v1/media/resolve`, { method: 'POST', headers, body: JSON.stringify({ payload: { image: `data:image/png;${id}` } }) });
    expect(resolved.status).toBe(200);
    const url = ((await resolved.json()) as { payload: { image: string } }).payload.image;
    expect(Buffer.from(await (await fetch(url)).arrayBuffer())).toEqual(png);
    expect((await fetch(`${service.baseUrl}/docs/swagger-ui-bundle.js`)).status).toBe(200);
  });
});

/** pnpm as this suite was started (`pnpm test` sets npm_execpath), else the one on PATH. */
function pnpmCommand(): string[] {
  const execPath = process.env.npm_execpath;
  if (execPath && /pnpm/.test(execPath)) return /\.[cm]?js$/.test(execPath) ? [process.execPath, execPath] : [execPath];
  return ['pnpm'];
}

/** `@scope/name/file.js` → `@scope/name`; `name/file.js` → `name`. */
function packageOf(request: string): string {
  const parts = request.split('/');
  return parts.slice(0, request.startsWith('@') ? 2 : 1).join('/');
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the suite with \`pnpm test\` (scripts/test.mjs starts the S3 stand-in)`);
  return value;
}

function readdir(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir) : [];
}
