import type { MediaStorage } from '@jan/domain';
import { LocalDiskMediaStorage } from '@jan/storage-local';
import type { MediaConfig } from '../../config/media-config';

/** The one place that picks the storage adapter, from validated configuration. */
export function createMediaStorage(config: MediaConfig): MediaStorage {
  switch (config.storageBackend) {
    case 'local':
      return new LocalDiskMediaStorage({
        root: config.localStoragePath,
        publicUrl: config.publicUrl,
        signingKeys: config.signingKeys.map((entry) => {
          const at = entry.indexOf(':');
          return { id: entry.slice(0, at), secret: entry.slice(at + 1) };
        }),
      });
    case 's3':
    case 'gcs':
      throw new Error(`storage backend ${config.storageBackend} is not wired yet`);
  }
}
