import { GcsMediaStorage } from '../../src';
import { describeMediaStorageContract } from '../../../storage-local/test/contract/media-storage.contract';
import { allowLoopbackOnly } from '../../../storage-local/test/contract/loopback-only';
import { gcsSignedExpiresAt, gcsTestEnv } from './gcs-test-env';

const { real, options } = gcsTestEnv();

let lift: (() => void) | undefined;
beforeAll(() => {
  if (!real) lift = allowLoopbackOnly();
});
afterAll(() => lift?.());

describeMediaStorageContract(
  real ? 'GcsMediaStorage on Google Cloud Storage' : 'GcsMediaStorage on the firebase-tools Storage emulator',
  real
    ? { storesContentType: true, responseContentType: true, putUpload: true, postUpload: true, expiry: true }
    : {
        storesContentType: true,
        responseContentType: { gap: 'emulator ignores response-content-type' },
        putUpload: { gap: 'emulator has no XML-API PUT, answers 501' },
        postUpload: true,
        expiry: { gap: 'emulator does not check signed URLs at all', signedExpiresAt: gcsSignedExpiresAt },
      },
  async () => ({ storage: new GcsMediaStorage(options) }),
);
