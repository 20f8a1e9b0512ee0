// S3 stand-in for the integration tests: s3rver (npm) on loopback, a free port, data under `dir`.
// s3rver does not verify SigV4 signatures, POST policies, checksums or KMS headers (see
// libs/storage-s3/README.md): the adapter tests check what is sent for those.
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

export const S3_TEST_BUCKET = 'jan-media-test';

/** @param {{ dir: string }} options */
export async function start({ dir }) {
  const S3rver = require('s3rver');
  const directory = path.join(dir, 's3rver');
  await mkdir(directory, { recursive: true });
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    resetOnClose: true,
    // Path-style only: virtual-host buckets would need DNS names other than loopback.
    vhostBuckets: false,
    configureBuckets: [{ name: S3_TEST_BUCKET }],
  });
  const { port } = await server.run();
  return {
    env: {
      TEST_S3_ENDPOINT: `http://127.0.0.1:${port}`,
      TEST_S3_BUCKET: S3_TEST_BUCKET,
      TEST_S3_REGION: 'us-east-1',
      TEST_S3_ACCESS_KEY_ID: 'S3RVER',
      TEST_S3_SECRET_ACCESS_KEY: 'S3RVER',
    },
    stop: async () => {
      // Keep-alive sockets from SDK clients would hold close() open.
      server.httpServer?.closeAllConnections?.();
      await server.close();
    },
  };
}
