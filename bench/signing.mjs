// What a signed URL costs per backend, and what the presign cache saves (`pnpm bench:signing`).
// In-process and offline: S3 SigV4 and GCS V4 signatures are computed locally (no request is
// sent), the local backend's HMAC likewise. Each is compared with a cache hit on the same key.
//
//   node bench/signing.mjs [--iterations=2000]
import { generateKeyPairSync } from 'node:crypto';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const requireFromApp = createRequire(fileURLToPath(new URL('../apps/media-api/package.json', import.meta.url)));
const { PresignCache } = requireFromApp('@jan/domain');
const { LocalDiskMediaStorage } = requireFromApp('@jan/storage-local');
const { S3MediaStorage } = requireFromApp('@jan/storage-s3');
const { GcsMediaStorage } = requireFromApp('@jan/storage-gcs');

const { values } = parseArgs({ options: { iterations: { type: 'string', default: '2000' } } });
const iterations = Number(values.iterations);
const key = 'images/jan_01m8efzv3ptkad8aa3vt69hvc8.png';
const options = { expiresInSeconds: 900, contentType: 'image/png', contentDisposition: 'inline' };

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const backends = {
  local: new LocalDiskMediaStorage({ root: '/nonexistent', publicUrl: 'http://127.0.0.1:8285', signingKeys: [{ id: 'k1', secret: 'bench-secret-0123456789abcdef0123456789' }] }),
  s3: new S3MediaStorage({
    bucket: 'bench',
    region: 'us-east-1',
    endpoint: 'http://127.0.0.1:9',
    forcePathStyle: true,
    credentials: { accessKeyId: 'BENCHKEY', secretAccessKey: 'bench-secret' },
  }),
  gcs: new GcsMediaStorage({
    bucket: 'bench',
    apiEndpoint: 'http://127.0.0.1:9',
    credentials: { client_email: 'bench@bench.iam.gserviceaccount.com', private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() },
  }),
};

async function measure(label, fn) {
  for (let i = 0; i < Math.min(200, iterations); i++) await fn(i);
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) await fn(i);
  const perOp = (performance.now() - t0) / iterations;
  return { label, microseconds: Math.round(perOp * 1000 * 10) / 10, perSecond: Math.round(1000 / perOp) };
}

const rows = [];
for (const [name, storage] of Object.entries(backends)) {
  const sign = await measure(`${name}: sign`, () => storage.signedReadUrl(key, options));
  const cache = new PresignCache(10_000);
  const now = new Date();
  cache.set(`${key}|url|inline`, await storage.signedReadUrl(key, options), now);
  const hit = await measure(`${name}: cache hit`, () => cache.get(`${key}|url|inline`, now));
  rows.push({ backend: name, sign_us: sign.microseconds, sign_per_s: sign.perSecond, hit_us: hit.microseconds, saved: `${Math.round(sign.microseconds / Math.max(hit.microseconds, 0.1))}x` });
}
console.log(`signing one read URL, ${iterations} iterations, one core, no network`);
console.table(rows);
