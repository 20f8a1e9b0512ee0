export { GcsMediaStorage, type GcsMediaStorageOptions, type GcsCredentials, type GcsClientRole } from './gcs-media-storage';
