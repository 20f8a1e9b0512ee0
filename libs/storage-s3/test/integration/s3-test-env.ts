import type { S3MediaStorageOptions } from '../../src';

/**
 * Where the S3 integration tests point. By default the s3rver stand-in started by
 * scripts/test-services/s3.mjs (TEST_S3_* on loopback). With TEST_S3_TARGET=aws they run
 * against a real bucket (see README): credentials then come from TEST_S3_ACCESS_KEY_ID/…
 * or the SDK's default chain, and the loopback-only guard is lifted.
 */
export interface S3TestEnv {
  real: boolean;
  options: S3MediaStorageOptions;
}

export function s3TestEnv(): S3TestEnv {
  const env = process.env;
  const real = env.TEST_S3_TARGET === 'aws';
  const need = (name: string) => {
    const value = env[name];
    if (!value) throw new Error(`${name} is not set: run the tests through scripts/test.mjs (pnpm test), which starts the S3 stand-in`);
    return value;
  };
  const bucket = need('TEST_S3_BUCKET');
  if (!real) {
    const endpoint = need('TEST_S3_ENDPOINT');
    if (!/^http:\/\/127\.\d+\.\d+\.\d+:\d+$/.test(endpoint)) throw new Error(`TEST_S3_ENDPOINT must be a loopback http origin, got ${endpoint}`);
  }
  const credentials = env.TEST_S3_ACCESS_KEY_ID
    ? { accessKeyId: env.TEST_S3_ACCESS_KEY_ID, secretAccessKey: need('TEST_S3_SECRET_ACCESS_KEY'), sessionToken: env.TEST_S3_SESSION_TOKEN || undefined }
    : undefined;
  if (!real && !credentials) need('TEST_S3_ACCESS_KEY_ID');
  return {
    real,
    options: {
      bucket,
      region: env.TEST_S3_REGION || 'us-east-1',
      endpoint: env.TEST_S3_ENDPOINT || undefined,
      forcePathStyle: real ? env.TEST_S3_FORCE_PATH_STYLE === 'true' : true,
      kmsKeyId: env.TEST_S3_KMS_KEY_ID || (real ? undefined : 'arn:aws:kms:us-east-1:000000000000:key/test-key'),
      credentials,
      partSizeBytes: 5 * 1024 * 1024,
      maxAttempts: 2,
    },
  };
}
