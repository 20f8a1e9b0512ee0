export {
  LOCAL_FILES_PATH,
  LOCAL_UPLOADS_PATH,
  LocalDiskMediaStorage,
  ObjectExistsError,
  type LocalDiskMediaStorageOptions,
  type SignedQuery,
} from './local-disk-media-storage';
export { UrlSigner, type SignatureCheck, type SigningKey } from './url-signer';
