import type { MediaStorage } from '@jan/domain';
import { LocalDiskMediaStorage } from '@jan/storage-local';
import type { GcsCredentials } from '@jan/storage-gcs';
import type { S3Credentials } from '@jan/storage-s3';
import type { MediaConfig } from '../../config/media-config';

/**
 * A key that never exists, probed by readiness: the serve role has no list permission (so no
 * bucket-level probe), and a missing key answering 403/404 proves the bucket is reachable.
 */
const PING_KEY = 'images/.readyz-probe';

/**
 * The one place that picks the storage adapter, from validated configuration. Cloud SDKs are
 * loaded only for the backend in use (they cost ~10 MB of memory and ~150 ms of start-up each).
 */
export async function createMediaStorage(config: MediaConfig): Promise<MediaStorage> {
  switch (config.storageBackend) {
    case 'local':
      return new LocalDiskMediaStorage({
        root: config.localStoragePath,
        publicUrl: config.publicUrl,
        durable: config.localFsync,
        signingKeys: config.signingKeys.map((entry) => {
          const at = entry.indexOf(':');
          return { id: entry.slice(0, at), secret: entry.slice(at + 1) };
        }),
      });
    case 's3': {
      const { S3MediaStorage } = await import('@jan/storage-s3');
      return new S3MediaStorage({
        bucket: config.s3Bucket!,
        region: config.s3Region,
        endpoint: config.s3Endpoint,
        forcePathStyle: config.s3ForcePathStyle,
        kmsKeyId: config.s3KmsKeyId,
        credentials: pair(config.s3AccessKeyId, config.s3SecretAccessKey),
        uploadCredentials: pair(config.s3UploadAccessKeyId, config.s3UploadSecretAccessKey),
        serveCredentials: pair(config.s3ServeAccessKeyId, config.s3ServeSecretAccessKey),
        publicEndpoint: config.s3PublicEndpoint,
        maxUploadBytes: config.maxBytes,
        accessDeniedIsNotFound: true,
        pingKey: PING_KEY,
      });
    }
    case 'gcs': {
      const { GcsMediaStorage } = await import('@jan/storage-gcs');
      return new GcsMediaStorage({
        bucket: config.gcsBucket!,
        kmsKeyName: config.gcsKmsKeyName,
        apiEndpoint: config.gcsApiEndpoint,
        credentials: keyFile(config.gcsKeyFile),
        uploadSigner: keyFile(config.gcsUploadKeyFile),
        serveSigner: keyFile(config.gcsServeKeyFile),
        resumable: config.gcsResumable,
        pingKey: PING_KEY,
      });
    }
  }
}

function keyFile(path: string | undefined): GcsCredentials | undefined {
  return path ? { keyFilename: path } : undefined;
}

function pair(accessKeyId: string | undefined, secretAccessKey: string | undefined): S3Credentials | undefined {
  return accessKeyId && secretAccessKey ? { accessKeyId, secretAccessKey } : undefined;
}
