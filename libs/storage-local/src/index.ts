export {
  LOCAL_FILES_PATH,
  LOCAL_UPLOADS_PATH,
  LocalDiskMediaStorage,
  type LocalDiskMediaStorageOptions,
  type SignedQuery,
} from './local-disk-media-storage';
export { removeStaleFiles, STALE_TEMPORARY_AGE_MS } from './stale-files';
export { UrlSigner, type SignatureCheck, type SigningKey } from './url-signer';
/** Now the port's error (`MediaStorage.putNew`); re-exported for existing importers. */
export { ObjectExistsError } from '@jan/domain';
