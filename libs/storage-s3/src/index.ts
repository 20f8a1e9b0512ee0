export { S3MediaStorage, type S3MediaStorageOptions, type S3Credentials, type S3ClientRole } from './s3-media-storage';
