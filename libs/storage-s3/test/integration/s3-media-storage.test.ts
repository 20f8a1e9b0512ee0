import { S3MediaStorage } from '../../src';
import { describeMediaStorageContract } from '../../../storage-local/test/contract/media-storage.contract';
import { allowLoopbackOnly } from '../../../storage-local/test/contract/loopback-only';
import { s3TestEnv } from './s3-test-env';

const { real, options } = s3TestEnv();

let lift: (() => void) | undefined;
beforeAll(() => {
  if (!real) lift = allowLoopbackOnly();
});
afterAll(() => lift?.());

describeMediaStorageContract(
  real ? 'S3MediaStorage on AWS S3' : 'S3MediaStorage on s3rver',
  {
    storesContentType: true,
    responseContentType: true,
    putUpload: true,
    postUpload: true,
    expiry: true,
  },
  async () => {
    const storage = new S3MediaStorage(options);
    return { storage, dispose: async () => storage.destroy() };
  },
);
