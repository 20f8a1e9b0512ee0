import type { GcsMediaStorageOptions } from '../../src';

/**
 * Where the GCS integration tests point. By default the firebase-tools emulator started by
 * scripts/test-services/gcs.mjs (TEST_GCS_* on loopback, a throwaway RSA key for signing).
 * With TEST_GCS_TARGET=gcp they run against a real bucket (see README): credentials from
 * TEST_GCS_KEY_FILE or ADC, and the loopback-only guard is lifted.
 */
export interface GcsTestEnv {
  real: boolean;
  options: GcsMediaStorageOptions;
  /** The signer's key, for checking signatures offline (stand-in only). */
  privateKeyPem?: string;
  clientEmail?: string;
}

export function gcsTestEnv(): GcsTestEnv {
  const env = process.env;
  const real = env.TEST_GCS_TARGET === 'gcp';
  const need = (name: string) => {
    const value = env[name];
    if (!value) throw new Error(`${name} is not set: run the tests through scripts/test.mjs (pnpm test), which starts the GCS emulator`);
    return value;
  };
  const bucket = need('TEST_GCS_BUCKET');
  if (real) {
    return {
      real,
      options: {
        bucket,
        projectId: env.TEST_GCS_PROJECT_ID || undefined,
        kmsKeyName: env.TEST_GCS_KMS_KEY_NAME || undefined,
        credentials: env.TEST_GCS_KEY_FILE ? { keyFilename: env.TEST_GCS_KEY_FILE } : undefined,
        resumable: true,
      },
    };
  }
  const endpoint = need('TEST_GCS_ENDPOINT');
  if (!/^http:\/\/127\.\d+\.\d+\.\d+:\d+$/.test(endpoint)) throw new Error(`TEST_GCS_ENDPOINT must be a loopback http origin, got ${endpoint}`);
  const clientEmail = need('TEST_GCS_CLIENT_EMAIL');
  const privateKeyPem = need('TEST_GCS_PRIVATE_KEY');
  return {
    real,
    clientEmail,
    privateKeyPem,
    options: {
      bucket,
      projectId: need('TEST_GCS_PROJECT_ID'),
      apiEndpoint: endpoint,
      credentials: { client_email: clientEmail, private_key: privateKeyPem },
      // The emulator fails multi-chunk resumable uploads.
      resumable: false,
      maxRetries: 0,
      requestTimeoutMs: 10_000,
    },
  };
}

/** Expiry a V4 signed URL carries: X-Goog-Date + X-Goog-Expires. */
export function gcsSignedExpiresAt(url: string): Date {
  const query = new URL(url).searchParams;
  const date = query.get('X-Goog-Date') ?? '';
  const iso = `${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T${date.slice(9, 11)}:${date.slice(11, 13)}:${date.slice(13, 15)}Z`;
  return new Date(Date.parse(iso) + Number(query.get('X-Goog-Expires')) * 1000);
}
