import { Readable } from 'node:stream';
import { S3ServiceException } from '@aws-sdk/client-s3';
import { isDomainError, ObjectExistsError } from '@jan/domain';
import { isS3ObjectExists, toDomainError } from './s3-errors';
import { S3MediaStorage } from './s3-media-storage';

// What @aws-sdk/client-s3 throws for S3's answers: a ServiceException named after S3's error code.
const preconditionFailed = () =>
  new S3ServiceException({
    name: 'PreconditionFailed',
    $fault: 'client',
    $metadata: { httpStatusCode: 412 },
    message: 'At least one of the pre-conditions you specified did not hold',
  });
const conditionalConflict = () =>
  new S3ServiceException({
    name: 'ConditionalRequestConflict',
    $fault: 'client',
    $metadata: { httpStatusCode: 409 },
    message: 'A conflicting operation occurred. If using PutObject, you can retry the request.',
  });

/** An adapter whose every request fails with `error` before leaving the process. */
function failingStorage(error: () => Error) {
  const commands: string[] = [];
  const storage = new S3MediaStorage({
    bucket: 'b',
    region: 'us-east-1',
    endpoint: 'http://127.0.0.1:9',
    forcePathStyle: true,
    credentials: { accessKeyId: 'k', secretAccessKey: 's' },
    maxAttempts: 1,
    configureClient: (client) =>
      client.middlewareStack.add(
        (_next, context) => async () => {
          commands.push(String(context.commandName));
          throw error();
        },
        { step: 'finalizeRequest', name: 'failEveryRequest' },
      ),
  });
  return { storage, commands };
}

describe('S3 conditional writes: errors', () => {
  it("reads S3's 412 PreconditionFailed as an object already at the key", () => {
    expect(isS3ObjectExists(preconditionFailed())).toBe(true);
    expect(isS3ObjectExists(conditionalConflict())).toBe(false);
    expect(isS3ObjectExists(new S3ServiceException({ name: 'NoSuchKey', $fault: 'client', $metadata: { httpStatusCode: 404 } }))).toBe(false);
  });

  it('putNew answers a 412 with ObjectExistsError naming the key', async () => {
    const { storage, commands } = failingStorage(preconditionFailed);
    const error = await storage.putNew('images/x.png', Readable.from([Buffer.from('bytes')]), { contentType: 'image/png' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ObjectExistsError);
    expect((error as ObjectExistsError).key).toBe('images/x.png');
    expect(commands).toEqual(['PutObjectCommand']);
    storage.destroy();
  });

  it('put, which sends no condition, does not read a 412 as an existing object', async () => {
    const { storage } = failingStorage(preconditionFailed);
    const error = await storage.put('images/x.png', Readable.from([Buffer.from('bytes')]), { contentType: 'image/png' }).catch((e: unknown) => e);
    expect(error).not.toBeInstanceOf(ObjectExistsError);
    expect(isDomainError(error, 'internal_error')).toBe(true);
    storage.destroy();
  });

  it('two conditional writes at the same moment (409 ConditionalRequestConflict) are storage_unavailable, worth a retry, not a 500', async () => {
    expect(toDomainError(conditionalConflict(), 'put').code).toBe('storage_unavailable');
    const { storage } = failingStorage(conditionalConflict);
    const error = await storage.putNew('images/x.png', Readable.from([Buffer.from('bytes')]), { contentType: 'image/png' }).catch((e: unknown) => e);
    expect(isDomainError(error, 'storage_unavailable')).toBe(true);
    storage.destroy();
  });
});
