import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { isDomainError, ObjectExistsError } from '@jan/domain';
import { S3MediaStorage, type S3ClientRole, type S3MediaStorageOptions } from '../../src';
import { contractKey, readAll } from '../../../storage-local/test/contract/media-storage.contract';
import { codesOfEveryOperation, describeStalledReads } from '../../../storage-local/test/contract/stalled-backend.contract';
import { allowLoopbackOnly } from '../../../storage-local/test/contract/loopback-only';
import { startRecordingProxy } from '../../../storage-local/test/contract/recording-proxy';
import { checkPostPolicy, checkPresignedUrl } from './sigv4-check';
import { s3TestEnv } from './s3-test-env';

// s3rver accepts SSE-KMS headers, checksums, ACLs and any SigV4 signature without checking
// them. These tests record what the adapter SENDS (SDK middleware on every client it makes)
// and verify presigned signatures independently, so those properties do not go untested.

interface Sent {
  role: S3ClientRole;
  command: string;
  headers: Record<string, string>;
  query: Record<string, string>;
}

const { real, options: base } = s3TestEnv();
const KMS_KEY = 'arn:aws:kms:us-east-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const SECRET = base.credentials?.secretAccessKey ?? '';
const MIB = 1024 * 1024;

function recordingStorage(extra: Partial<S3MediaStorageOptions> = {}) {
  const sent: Sent[] = [];
  const storage = new S3MediaStorage({
    ...base,
    kmsKeyId: KMS_KEY,
    ...extra,
    configureClient: (client: S3Client, role) => {
      client.middlewareStack.add(
        (next, context) => async (args) => {
          const request = args.request as { headers: Record<string, string>; query?: Record<string, string> };
          sent.push({ role, command: String(context.commandName), headers: { ...request.headers }, query: { ...(request.query ?? {}) } });
          return next(args);
        },
        { step: 'deserialize', name: 'recordSentRequests' },
      );
    },
  });
  return { storage, sent };
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest();
const header = (entry: Sent | undefined, name: string) => {
  const found = Object.entries(entry?.headers ?? {}).find(([k]) => k.toLowerCase() === name);
  return found?.[1];
};
const hasAclHeader = (entry: Sent) => Object.keys(entry.headers).some((h) => /^x-amz-(acl|grant-)/i.test(h));
/** A loopback server that refuses every request with a 403 carrying S3's error `code`. */
async function startForbiddingServer(code: string, status = 403): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((request, response) => {
    request.resume();
    response.writeHead(status, { 'content-type': 'application/xml' });
    response.end(request.method === 'HEAD' ? undefined : `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>denied</Message></Error>`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => new Error('expected a rejection'),
    (e: unknown) => e,
  );
}

let lift: (() => void) | undefined;
beforeAll(() => {
  if (real) throw new Error('these tests record requests against the s3rver stand-in; unset TEST_S3_TARGET');
  lift = allowLoopbackOnly();
});
afterAll(() => lift?.());

describe('S3MediaStorage: what is SENT on writes (s3rver does not verify SSE-KMS, checksums or ACLs)', () => {
  it('PutObject SENDS aws:kms, the KMS key id and x-amz-checksum-sha256 of the body, and no ACL header', async () => {
    const { storage, sent } = recordingStorage();
    const k = contractKey();
    const data = randomBytes(5000);
    await storage.put(k, Readable.from([data]), { contentType: 'image/png', sha256: sha256(data).toString('hex') });
    const put = sent.find((s) => s.command === 'PutObjectCommand');
    expect(put?.role).toBe('write');
    expect(header(put, 'x-amz-server-side-encryption')).toBe('aws:kms');
    expect(header(put, 'x-amz-server-side-encryption-aws-kms-key-id')).toBe(KMS_KEY);
    expect(header(put, 'x-amz-checksum-sha256')).toBe(sha256(data).toString('base64'));
    expect(header(put, 'content-type')).toBe('image/png');
    expect(header(put, 'content-length')).toBe('5000');
    // A plain body, not aws-chunked framing (which s3rver would store as data).
    expect(header(put, 'content-encoding')).toBeUndefined();
    expect(hasAclHeader(put!)).toBe(false);
    await storage.delete(k);
    storage.destroy();
  });

  it('without a caller checksum, PutObject still SENDS the SHA-256 the adapter computed; without kmsKeyId it SENDS aws:kms and no key id (bucket default key)', async () => {
    const { storage, sent } = recordingStorage({ kmsKeyId: undefined });
    const k = contractKey();
    const data = randomBytes(100);
    await storage.put(k, Readable.from([data]), { contentType: 'image/png' });
    const put = sent.find((s) => s.command === 'PutObjectCommand');
    expect(header(put, 'x-amz-checksum-sha256')).toBe(sha256(data).toString('base64'));
    expect(header(put, 'x-amz-server-side-encryption')).toBe('aws:kms');
    expect(header(put, 'x-amz-server-side-encryption-aws-kms-key-id')).toBeUndefined();
    await storage.delete(k);
    storage.destroy();
  });

  it('multipart: CreateMultipartUpload SENDS SSE-KMS and checksum algorithm SHA256, each UploadPart SENDS its own SHA-256, Complete lists them', async () => {
    const { storage, sent } = recordingStorage();
    const k = contractKey();
    const data = randomBytes(11 * MIB);
    await storage.put(k, Readable.from([data.subarray(0, 3 * MIB), data.subarray(3 * MIB)]), { contentType: 'image/png', sha256: sha256(data).toString('hex') });
    expect(sent.map((s) => s.command)).toEqual([
      'CreateMultipartUploadCommand',
      'UploadPartCommand',
      'UploadPartCommand',
      'UploadPartCommand',
      'CompleteMultipartUploadCommand',
    ]);
    const create = sent[0];
    expect(header(create, 'x-amz-server-side-encryption')).toBe('aws:kms');
    expect(header(create, 'x-amz-server-side-encryption-aws-kms-key-id')).toBe(KMS_KEY);
    expect(header(create, 'x-amz-checksum-algorithm')).toBe('SHA256');
    expect(hasAclHeader(create)).toBe(false);
    const parts = [data.subarray(0, 5 * MIB), data.subarray(5 * MIB, 10 * MIB), data.subarray(10 * MIB)];
    sent.slice(1, 4).forEach((part, i) => {
      expect(part.query.partNumber).toBe(String(i + 1));
      expect(header(part, 'x-amz-checksum-sha256')).toBe(sha256(parts[i]).toString('base64'));
    });
    // Hashes, not toEqual: Jest compares an 11 MiB Buffer element by element (~30 s).
    expect(sha256(await readAll((await storage.get(k)).body))).toEqual(sha256(data));
    await storage.delete(k);
    storage.destroy();
  }, 30_000);

  it('a body failing after one part SENDS AbortMultipartUpload for the same UploadId and never Complete', async () => {
    const { storage, sent } = recordingStorage();
    const k = contractKey();
    async function* failing() {
      yield randomBytes(6 * MIB);
      throw new Error('client went away');
    }
    const error = await failure(storage.put(k, Readable.from(failing()), { contentType: 'image/png' }));
    expect((error as Error).message).toBe('client went away');
    const commands = sent.map((s) => s.command);
    expect(commands).toEqual(['CreateMultipartUploadCommand', 'UploadPartCommand', 'AbortMultipartUploadCommand']);
    const uploadId = sent[1].query.uploadId;
    expect(uploadId).toBeTruthy();
    expect(sent[2].query.uploadId).toBe(uploadId);
    await expect(storage.head(k)).resolves.toBeNull();
    storage.destroy();
  }, 30_000);

  it('a declared sha256 that does not match: checksum_mismatch, multipart aborted before Complete, nothing stored', async () => {
    const { storage, sent } = recordingStorage();
    const k = contractKey();
    const data = randomBytes(6 * MIB);
    const error = await failure(storage.put(k, Readable.from([data]), { contentType: 'image/png', sha256: '00'.repeat(32) }));
    expect(isDomainError(error, 'checksum_mismatch')).toBe(true);
    expect(sent.map((s) => s.command)).not.toContain('CompleteMultipartUploadCommand');
    expect(sent.map((s) => s.command)).toContain('AbortMultipartUploadCommand');
    await expect(storage.head(k)).resolves.toBeNull();
    storage.destroy();
  }, 30_000);

  it('a declared sha256 or length that does not match a small body: refused before any PutObject is sent', async () => {
    const { storage, sent } = recordingStorage();
    const k = contractKey();
    const data = randomBytes(64);
    expect(isDomainError(await failure(storage.put(k, Readable.from([data]), { contentType: 'image/png', sha256: '11'.repeat(32) })), 'checksum_mismatch')).toBe(true);
    // The same details as complete's size_mismatch; a longer body is cut off where it passes the declared size.
    expect(await failure(storage.put(k, Readable.from([data]), { contentType: 'image/png', contentLength: 65 }))).toMatchObject({ code: 'size_mismatch', details: { declared_bytes: 65, received_bytes: 64 } });
    expect(await failure(storage.put(k, Readable.from([data]), { contentType: 'image/png', contentLength: 10 }))).toMatchObject({ code: 'size_mismatch', details: { declared_bytes: 10, received_bytes: 64 } });
    expect(sent).toEqual([]);
    await expect(storage.head(k)).resolves.toBeNull();
    storage.destroy();
  });
});

describe('S3MediaStorage.putNew: If-None-Match on the request that commits the object (s3rver ignores the header)', () => {
  it('SENDS If-None-Match: * on PutObject and on CompleteMultipartUpload, on nothing else, and put never SENDS it', async () => {
    const { storage, sent } = recordingStorage();
    const small = contractKey();
    const large = contractKey();
    await storage.putNew(small, Readable.from([randomBytes(100)]), { contentType: 'image/png' });
    await storage.putNew(large, Readable.from([randomBytes(6 * MIB)]), { contentType: 'image/png' });
    const conditional = sent.filter((s) => header(s, 'if-none-match') !== undefined);
    expect(conditional.map((s) => [s.command, header(s, 'if-none-match')])).toEqual([
      ['PutObjectCommand', '*'],
      ['CompleteMultipartUploadCommand', '*'],
    ]);
    expect(sent.map((s) => s.command)).toEqual(['PutObjectCommand', 'CreateMultipartUploadCommand', 'UploadPartCommand', 'UploadPartCommand', 'CompleteMultipartUploadCommand']);

    sent.length = 0;
    await storage.put(small, Readable.from([randomBytes(100)]), { contentType: 'image/png' });
    await storage.put(large, Readable.from([randomBytes(6 * MIB)]), { contentType: 'image/png' });
    expect(sent.filter((s) => header(s, 'if-none-match') !== undefined)).toEqual([]);
    await storage.delete(small);
    await storage.delete(large);
    storage.destroy();
  }, 30_000);

  it("an object at the key: S3's 412 PreconditionFailed is ObjectExistsError, the first object stays, and a multipart write is aborted", async () => {
    // s3rver overwrites regardless of If-None-Match: a proxy in front of it refuses a conditional
    // write to an occupied key with the answer S3 gives.
    const plain = new S3MediaStorage(base);
    const refused: string[] = [];
    const proxy = await startRecordingProxy(base.endpoint!, {
      answer: async (request) => {
        if (request.headers['if-none-match'] !== '*') return undefined;
        const key = decodeURIComponent(new URL(request.url, 'http://proxy').pathname.split('/').slice(2).join('/'));
        if (!(await plain.head(key))) return undefined;
        refused.push(request.method);
        return {
          status: 412,
          headers: { 'content-type': 'application/xml' },
          body: '<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Condition>If-None-Match</Condition></Error>',
        };
      },
    });
    const { storage, sent } = recordingStorage({ endpoint: proxy.origin });
    try {
      for (const size of [100, 6 * MIB]) {
        const k = contractKey();
        const first = randomBytes(size);
        expect(await storage.putNew(k, Readable.from([first]), { contentType: 'image/png' })).toEqual({ bytes: size });
        sent.length = 0;
        const error = await failure(storage.putNew(k, Readable.from([randomBytes(size)]), { contentType: 'image/png' }));
        expect(error).toBeInstanceOf(ObjectExistsError);
        expect((error as ObjectExistsError).key).toBe(k);
        expect(sha256(await readAll((await storage.get(k)).body))).toEqual(sha256(first));
        if (size > 100) {
          const complete = sent.find((s) => s.command === 'CompleteMultipartUploadCommand');
          const abort = sent.find((s) => s.command === 'AbortMultipartUploadCommand');
          expect(abort?.query.uploadId).toBeTruthy();
          expect(abort?.query.uploadId).toBe(complete?.query.uploadId);
        }
        await storage.delete(k);
      }
      expect(refused).toEqual(['PUT', 'POST']);
    } finally {
      storage.destroy();
      plain.destroy();
      await proxy.close();
    }
  }, 30_000);
});

describe('S3MediaStorage: no List* and least privilege, as SENT', () => {
  it('every public operation, recorded: only the allowed commands, never a List*', async () => {
    const { storage, sent } = recordingStorage();
    const k = contractKey();
    await storage.ping();
    await storage.put(k, Readable.from([randomBytes(10)]), { contentType: 'image/png' });
    await storage.put(contractKey(), Readable.from([randomBytes(6 * MIB)]), { contentType: 'image/png' }).then((r) => r);
    await storage.head(k);
    await storage.head(contractKey());
    await readAll((await storage.get(k)).body);
    await readAll((await storage.get(k, { start: 2, end: 4 })).body);
    await failure(storage.get(contractKey()));
    await storage.signedReadUrl(k, { expiresInSeconds: 60 });
    await storage.signedUploadUrl(k, { method: 'PUT', contentType: 'image/png', maxBytes: 100, expiresInSeconds: 60 });
    await storage.signedUploadUrl(k, { method: 'POST', contentType: 'image/png', maxBytes: 100, expiresInSeconds: 60 });
    await storage.delete(k);
    await storage.delete(k);
    const commands = new Set(sent.map((s) => s.command));
    expect([...commands].filter((c) => /^List/.test(c))).toEqual([]);
    const allowed = new Set([
      'HeadBucketCommand',
      'PutObjectCommand',
      'CreateMultipartUploadCommand',
      'UploadPartCommand',
      'CompleteMultipartUploadCommand',
      'AbortMultipartUploadCommand',
      'HeadObjectCommand',
      'GetObjectCommand',
      'DeleteObjectCommand',
    ]);
    expect([...commands].filter((c) => !allowed.has(c))).toEqual([]);
    expect(sent.some((s) => hasAclHeader(s))).toBe(false);
    storage.destroy();
  }, 30_000);

  it('writes and deletes SEND the upload credentials, reads and ping the serve credentials (s3rver refuses both unknown keys: storage_unavailable)', async () => {
    const { storage, sent } = recordingStorage({
      uploadCredentials: { accessKeyId: 'UPLOADERKEY', secretAccessKey: 'upload-secret' },
      serveCredentials: { accessKeyId: 'SERVERKEY', secretAccessKey: 'serve-secret' },
      maxAttempts: 1,
    });
    const k = contractKey();
    const codes = [
      await failure(storage.put(k, Readable.from([randomBytes(10)]), { contentType: 'image/png' })),
      await failure(storage.delete(k)),
      await failure(storage.get(k)),
      await failure(storage.head(k)),
      await failure(storage.ping()),
    ].map((e) => (isDomainError(e) ? e.code : e));
    expect(codes).toEqual(Array(5).fill('storage_unavailable'));
    const keyOf = (s: Sent) => /Credential=([^/]+)\//.exec(header(s, 'authorization') ?? '')?.[1];
    const byCommand = Object.fromEntries(sent.map((s) => [s.command, keyOf(s)]));
    expect(byCommand).toEqual({
      PutObjectCommand: 'UPLOADERKEY',
      DeleteObjectCommand: 'UPLOADERKEY',
      GetObjectCommand: 'SERVERKEY',
      HeadObjectCommand: 'SERVERKEY',
      HeadBucketCommand: 'SERVERKEY',
    });
    const read = await storage.signedReadUrl(k, { expiresInSeconds: 60 });
    const upload = await storage.signedUploadUrl(k, { method: 'PUT', contentType: 'image/png', maxBytes: 10, expiresInSeconds: 60 });
    const post = await storage.signedUploadUrl(k, { method: 'POST', contentType: 'image/png', maxBytes: 10, expiresInSeconds: 60 });
    expect(new URL(read.url).searchParams.get('X-Amz-Credential')).toMatch(/^SERVERKEY\//);
    expect(new URL(upload.url).searchParams.get('X-Amz-Credential')).toMatch(/^UPLOADERKEY\//);
    expect(post.fields?.['X-Amz-Credential']).toMatch(/^UPLOADERKEY\//);
    storage.destroy();
  });

  it('accessDeniedIsNotFound: AccessDenied (what S3 answers for absent keys without s3:ListBucket) reads as absent', async () => {
    // s3rver never answers AccessDenied: a loopback server answers as S3 does for a reader
    // without ListBucket (an XML AccessDenied to GET and DELETE, a bare 403 to HEAD).
    const s3 = await startForbiddingServer('AccessDenied');
    const { storage } = recordingStorage({ endpoint: s3.url, accessDeniedIsNotFound: true, maxAttempts: 1 });
    await expect(storage.head(contractKey())).resolves.toBeNull();
    expect(isDomainError(await failure(storage.get(contractKey())), 'media_not_found')).toBe(true);
    // DeleteObject answers 204 for absent keys: its 403 is a refusal, never "already gone".
    expect(isDomainError(await failure(storage.delete(contractKey())), 'storage_unavailable')).toBe(true);
    storage.destroy();
    await s3.close();
  });

  it('accessDeniedIsNotFound: bad credentials are storage_unavailable, not a missing object', async () => {
    const { storage } = recordingStorage({ serveCredentials: { accessKeyId: 'UNKNOWNKEY', secretAccessKey: 'x' }, credentials: { accessKeyId: 'UNKNOWNKEY', secretAccessKey: 'x' }, accessDeniedIsNotFound: true, maxAttempts: 1 });
    const get = await failure(storage.get(contractKey()));
    expect(isDomainError(get, 'storage_unavailable') && get.details).toMatchObject({ s3_error: 'InvalidAccessKeyId', status: 403 });
    expect(isDomainError(await failure(storage.delete(contractKey())), 'storage_unavailable')).toBe(true);
    storage.destroy();
  });

  it('ping with pingKey: an absent key (404) or AccessDenied under accessDeniedIsNotFound is healthy; an unknown access key is not', async () => {
    const healthy = recordingStorage({ pingKey: 'images/.readyz-probe', accessDeniedIsNotFound: true });
    await expect(healthy.storage.ping()).resolves.toBeUndefined();
    expect(healthy.sent.map((s) => [s.command, header(s, 'range')])).toEqual([['GetObjectCommand', 'bytes=0-0']]);
    healthy.storage.destroy();
    const badKey = recordingStorage({ pingKey: 'images/.readyz-probe', accessDeniedIsNotFound: true, serveCredentials: { accessKeyId: 'UNKNOWNKEY', secretAccessKey: 'x' }, maxAttempts: 1 });
    expect(isDomainError(await failure(badKey.storage.ping()), 'storage_unavailable')).toBe(true);
    badKey.storage.destroy();
  });

  it.each(['KMS.DisabledException', 'KMS.NotFoundException', 'KMS.KMSInvalidStateException'])(
    'S3 refusing the KMS key (400 %s: disabled, deleted, pending deletion) is storage_unavailable for writes and reads, never internal_error',
    async (code) => {
      // s3rver ignores KMS headers: a loopback server answers as S3 does when SSE-KMS cannot use the key.
      const s3 = await startForbiddingServer(code, 400);
      const { storage } = recordingStorage({ endpoint: s3.url, maxAttempts: 1 });
      try {
        const put = await failure(storage.put(contractKey(), Readable.from([randomBytes(10)]), { contentType: 'image/png' }));
        expect(isDomainError(put, 'storage_unavailable') && put.details).toMatchObject({ s3_error: code, status: 400 });
        const multipart = await failure(storage.put(contractKey(), Readable.from([randomBytes(6 * 1024 * 1024)]), { contentType: 'image/png' }));
        expect(isDomainError(multipart, 'storage_unavailable')).toBe(true);
        expect(isDomainError(await failure(storage.get(contractKey())), 'storage_unavailable')).toBe(true);
      } finally {
        storage.destroy();
        await s3.close();
      }
    },
  );

  it.each(['InvalidArgument', 'InvalidRequest', 'RequestTimeout'])(
    'any other 400 from S3 (%s: our request, not the client\'s) is storage_unavailable for every operation, never internal_error',
    async (code) => {
      const s3 = await startForbiddingServer(code, 400);
      const { storage } = recordingStorage({ endpoint: s3.url, maxAttempts: 1 });
      try {
        expect(await codesOfEveryOperation(storage)).toEqual(Array(5).fill('storage_unavailable'));
        const put = await failure(storage.put(contractKey(), Readable.from([randomBytes(10)]), { contentType: 'image/png' }));
        expect(isDomainError(put, 'storage_unavailable') && put.details).toMatchObject({ s3_error: code, status: 400 });
      } finally {
        storage.destroy();
        await s3.close();
      }
    },
  );

  it('an unreachable endpoint is storage_unavailable for every operation', async () => {
    const { storage } = recordingStorage({ endpoint: 'http://127.0.0.1:9', maxAttempts: 1, requestTimeoutMs: 2_000 });
    expect(await codesOfEveryOperation(storage)).toEqual(Array(5).fill('storage_unavailable'));
    storage.destroy();
  });

  it('an endpoint that takes the request and never answers (a stalled bucket) is storage_unavailable after requestTimeoutMs, for every operation', async () => {
    const server = createServer((request) => request.resume());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const { storage } = recordingStorage({ endpoint: `http://127.0.0.1:${port}`, maxAttempts: 1, requestTimeoutMs: 300 });
    try {
      const started = Date.now();
      expect(await codesOfEveryOperation(storage)).toEqual(Array(5).fill('storage_unavailable'));
      expect(Date.now() - started).toBeLessThan(5 * 2_000);
    } finally {
      storage.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  }, 15_000);
});

describeStalledReads('S3MediaStorage', () => ({
  origin: base.endpoint!,
  direct: () => new S3MediaStorage(base),
  withShortTimeout: (origin = base.endpoint!) => new S3MediaStorage({ ...base, endpoint: origin, maxAttempts: 1, requestTimeoutMs: 300 }),
  readsObject: (request, key) => request.method === 'GET' && request.url.includes(key),
}));

describe('S3MediaStorage: presigned URLs and POST policies, as GENERATED (s3rver checks expiry only, not signatures or policies)', () => {
  it('presigned PUT signs content-type, content-length, x-amz-checksum-sha256 and the SSE-KMS headers, returns them as the headers to send, and its SigV4 signature verifies', async () => {
    const { storage } = recordingStorage();
    const k = contractKey();
    const data = randomBytes(321);
    const checksum = sha256(data).toString('base64');
    const upload = await storage.signedUploadUrl(k, { method: 'PUT', contentType: 'image/png', contentLength: 321, checksumSha256Base64: checksum, maxBytes: 1000, expiresInSeconds: 300 });
    expect(upload.headers).toEqual({
      'content-type': 'image/png',
      'content-length': '321',
      'x-amz-server-side-encryption': 'aws:kms',
      'x-amz-server-side-encryption-aws-kms-key-id': KMS_KEY,
      'x-amz-checksum-sha256': checksum,
    });
    const check = checkPresignedUrl(upload.url, 'PUT', upload.headers, SECRET);
    expect(check.signedHeaders).toEqual(['content-length', 'content-type', 'host', 'x-amz-checksum-sha256', 'x-amz-server-side-encryption', 'x-amz-server-side-encryption-aws-kms-key-id']);
    expect(check.expiresSeconds).toBe(300);
    expect(check.valid).toBe(true);
    // What S3 would refuse: another type, another length, another checksum.
    expect(checkPresignedUrl(upload.url, 'PUT', { ...upload.headers, 'content-type': 'text/html' }, SECRET).valid).toBe(false);
    expect(checkPresignedUrl(upload.url, 'PUT', { ...upload.headers, 'content-length': '322' }, SECRET).valid).toBe(false);
    expect(checkPresignedUrl(upload.url, 'PUT', { ...upload.headers, 'x-amz-checksum-sha256': sha256(Buffer.from('x')).toString('base64') }, SECRET).valid).toBe(false);
    expect(new URL(upload.url).searchParams.has('x-amz-acl')).toBe(false);
    // And the URL works as a PUT on the stand-in.
    const response = await fetch(upload.url, { method: 'PUT', headers: upload.headers, body: data });
    expect(response.status).toBe(200);
    expect(await readAll((await storage.get(k)).body)).toEqual(data);
    await storage.delete(k);
    storage.destroy();
  });

  it('presigned PUT without a declared size or checksum signs content-type (size is then checked after upload)', async () => {
    const { storage } = recordingStorage();
    const upload = await storage.signedUploadUrl(contractKey(), { method: 'PUT', contentType: 'image/webp', maxBytes: 1000, expiresInSeconds: 60 });
    const check = checkPresignedUrl(upload.url, 'PUT', upload.headers, SECRET);
    expect(check.signedHeaders).toEqual(['content-type', 'host', 'x-amz-server-side-encryption', 'x-amz-server-side-encryption-aws-kms-key-id']);
    expect(check.valid).toBe(true);
    storage.destroy();
  });

  it('a declared size above maxBytes (or the maxUploadBytes cap) is refused with payload_too_large before signing', async () => {
    const { storage } = recordingStorage({ maxUploadBytes: 500 });
    for (const method of ['PUT', 'POST'] as const) {
      const error = await failure(storage.signedUploadUrl(contractKey(), { method, contentType: 'image/png', contentLength: 600, maxBytes: 1000, expiresInSeconds: 60 }));
      expect(isDomainError(error, 'payload_too_large')).toBe(true);
    }
    storage.destroy();
  });

  it('POST policy carries content-length-range [1, maxBytes] (capped by maxUploadBytes), the exact key, Content-Type and SSE-KMS conditions, and its signature verifies', async () => {
    const { storage } = recordingStorage({ maxUploadBytes: 5000 });
    const k = contractKey();
    const before = Date.now();
    const post = await storage.signedUploadUrl(k, { method: 'POST', contentType: 'image/png', maxBytes: 9000, expiresInSeconds: 120 });
    expect(post.method).toBe('POST');
    expect(post.url).toBe(`${base.endpoint}/${base.bucket}/`);
    const fields = post.fields!;
    const { valid, policy } = checkPostPolicy(fields, SECRET);
    expect(valid).toBe(true);
    expect(policy.conditions).toEqual(
      expect.arrayContaining([
        ['content-length-range', 1, 5000],
        { bucket: base.bucket },
        { key: k },
        { 'Content-Type': 'image/png' },
        { 'x-amz-server-side-encryption': 'aws:kms' },
        { 'x-amz-server-side-encryption-aws-kms-key-id': KMS_KEY },
        { 'X-Amz-Algorithm': 'AWS4-HMAC-SHA256' },
        { 'X-Amz-Credential': fields['X-Amz-Credential'] },
        { 'X-Amz-Date': fields['X-Amz-Date'] },
      ]),
    );
    // No wildcard conditions: every form field is pinned to one value.
    expect(policy.conditions.some((c) => Array.isArray(c) && c[0] === 'starts-with')).toBe(false);
    const expiration = Date.parse(policy.expiration);
    expect(expiration).toBeGreaterThanOrEqual(before + 119_000);
    expect(expiration).toBeLessThanOrEqual(Date.now() + 121_000);
    expect(fields.key).toBe(k);
    expect(fields['Content-Type']).toBe('image/png');
    storage.destroy();
  });

  it('POST policy with a declared size pins content-length-range to exactly that size, and binds a declared checksum', async () => {
    const { storage } = recordingStorage();
    const post = await storage.signedUploadUrl(contractKey(), { method: 'POST', contentType: 'image/png', contentLength: 777, checksumSha256Base64: 'q'.repeat(43) + '=', maxBytes: 9000, expiresInSeconds: 60 });
    const { valid, policy } = checkPostPolicy(post.fields!, SECRET);
    expect(valid).toBe(true);
    expect(policy.conditions).toEqual(expect.arrayContaining([['content-length-range', 777, 777], { 'x-amz-checksum-sha256': 'q'.repeat(43) + '=' }]));
    storage.destroy();
  });

  it('presigned GET asks for response-content-type and response-content-disposition, signs only host, and its SigV4 signature verifies', async () => {
    const { storage } = recordingStorage();
    const read = await storage.signedReadUrl(contractKey(), { expiresInSeconds: 90, contentType: 'image/png', contentDisposition: 'attachment; filename="a.png"' });
    const url = new URL(read.url);
    expect(url.searchParams.get('response-content-type')).toBe('image/png');
    expect(url.searchParams.get('response-content-disposition')).toBe('attachment; filename="a.png"');
    const check = checkPresignedUrl(read.url, 'GET', {}, SECRET);
    expect(check.signedHeaders).toEqual(['host']);
    expect(check.expiresSeconds).toBe(90);
    expect(check.valid).toBe(true);
    // Tampering with the override is what S3 would refuse.
    url.searchParams.set('response-content-type', 'text/html');
    expect(checkPresignedUrl(url.toString(), 'GET', {}, SECRET).valid).toBe(false);
    storage.destroy();
  });

  it('publicEndpoint: URLs are SIGNED for the public origin (not rewritten after signing) and work through it', async () => {
    const proxy = await startRecordingProxy(base.endpoint!);
    const { storage } = recordingStorage({ publicEndpoint: proxy.origin });
    try {
      const k = contractKey();
      const data = randomBytes(200);
      await storage.put(k, Readable.from([data]), { contentType: 'image/png' });
      expect(proxy.requests).toEqual([]); // data calls use the internal endpoint
      const read = await storage.signedReadUrl(k, { expiresInSeconds: 60 });
      expect(new URL(read.url).origin).toBe(proxy.origin);
      expect(checkPresignedUrl(read.url, 'GET', {}, SECRET).valid).toBe(true);
      const response = await fetch(read.url);
      expect(Buffer.from(await response.arrayBuffer())).toEqual(data);
      expect(proxy.requests.map((r) => r.headers.host)).toEqual([new URL(proxy.origin).host]);
      const upload = await storage.signedUploadUrl(k, { method: 'PUT', contentType: 'image/png', maxBytes: 10, expiresInSeconds: 60 });
      expect(new URL(upload.url).origin).toBe(proxy.origin);
      expect(checkPresignedUrl(upload.url, 'PUT', upload.headers, SECRET).valid).toBe(true);
      const post = await storage.signedUploadUrl(k, { method: 'POST', contentType: 'image/png', maxBytes: 10, expiresInSeconds: 60 });
      expect(post.url).toBe(`${proxy.origin}/${base.bucket}/`);
      await storage.delete(k);
    } finally {
      storage.destroy();
      await proxy.close();
    }
  });

  it('TTLs outside 1 s … 7 days are refused with invalid_request', async () => {
    const { storage } = recordingStorage();
    for (const expiresInSeconds of [0, 7 * 24 * 3600 + 1, Number.NaN]) {
      expect(isDomainError(await failure(storage.signedReadUrl(contractKey(), { expiresInSeconds })), 'invalid_request')).toBe(true);
    }
    storage.destroy();
  });
});

