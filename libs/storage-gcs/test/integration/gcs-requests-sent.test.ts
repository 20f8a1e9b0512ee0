import { createHash, createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { isDomainError, ObjectExistsError } from '@jan/domain';
import { GcsMediaStorage, type GcsMediaStorageOptions } from '../../src';
import { contractKey, readAll } from '../../../storage-local/test/contract/media-storage.contract';
import { codesOfEveryOperation, describeStalledReads } from '../../../storage-local/test/contract/stalled-backend.contract';
import { allowLoopbackOnly } from '../../../storage-local/test/contract/loopback-only';
import { startRecordingProxy, type RecordedRequest } from '../../../storage-local/test/contract/recording-proxy';
import { gcsTestEnv } from './gcs-test-env';

// The emulator accepts CMEK parameters, ACLs and any (or no) signature without checking them.
// These tests record what the adapter SENDS through a loopback proxy in front of the emulator,
// and verify V4 signatures offline with the signer's public key, as GCS would.

const { real, options: base, privateKeyPem, clientEmail } = gcsTestEnv();
const KMS = 'projects/jan-test/locations/europe-west1/keyRings/media/cryptoKeys/objects';

let lift: (() => void) | undefined;
let proxy: Awaited<ReturnType<typeof startRecordingProxy>>;
beforeAll(async () => {
  if (real) throw new Error('these tests record requests against the emulator; unset TEST_GCS_TARGET');
  lift = allowLoopbackOnly();
  proxy = await startRecordingProxy(base.apiEndpoint!);
});
afterAll(async () => {
  await proxy?.close();
  lift?.();
});

function storageThroughProxy(extra: Partial<GcsMediaStorageOptions> = {}): { storage: GcsMediaStorage; sent: () => RecordedRequest[] } {
  const from = proxy.requests.length;
  const storage = new GcsMediaStorage({ ...base, apiEndpoint: proxy.origin, kmsKeyName: KMS, ...extra });
  return { storage, sent: () => proxy.requests.slice(from) };
}

const enc = (value: string) => encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * GOOG4-RSA-SHA256 check, from Google's "V4 signing process" document. The client library
 * signs the bare hostname (GCS is always on the default port), so the host is taken as such.
 */
function checkV4(rawUrl: string, method: string, headers: Record<string, string>, publicKeyPem: string) {
  const url = new URL(rawUrl);
  const q = url.searchParams;
  const signedHeaders = (q.get('X-Goog-SignedHeaders') ?? '').split(';');
  const all: Record<string, string> = { host: url.hostname };
  for (const [k, v] of Object.entries(headers)) all[k.toLowerCase()] = v;
  const query = [...q.entries()]
    .filter(([k]) => k !== 'X-Goog-Signature')
    .map(([k, v]) => [enc(k), enc(v)])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonical = [method, url.pathname, query, signedHeaders.map((h) => `${h}:${(all[h] ?? '').trim()}\n`).join(''), signedHeaders.join(';'), 'UNSIGNED-PAYLOAD'].join('\n');
  const credential = q.get('X-Goog-Credential') ?? '';
  const scope = credential.split('/').slice(1).join('/');
  const stringToSign = ['GOOG4-RSA-SHA256', q.get('X-Goog-Date'), scope, createHash('sha256').update(canonical).digest('hex')].join('\n');
  const valid = signedHeaders.every((h) => h in all) && verify('RSA-SHA256', Buffer.from(stringToSign), createPublicKey(publicKeyPem), Buffer.from(q.get('X-Goog-Signature') ?? '', 'hex'));
  return { valid, signedHeaders, credential, expires: Number(q.get('X-Goog-Expires')) };
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => new Error('expected a rejection'),
    (e: unknown) => e,
  );
}

describe('GcsMediaStorage: what is SENT (the emulator does not verify CMEK, ACLs or signatures)', () => {
  it('uploads SEND kmsKeyName (CMEK) and no ACL (predefinedAcl / acl), as one non-resumable request', async () => {
    const { storage, sent } = storageThroughProxy();
    const k = contractKey();
    const data = randomBytes(3000);
    await storage.put(k, Readable.from([data]), { contentType: 'image/png' });
    const uploads = sent().filter((r) => r.method === 'POST' && r.url.startsWith('/upload/storage/v1/'));
    expect(uploads).toHaveLength(1);
    const query = new URL(uploads[0].url, 'http://x').searchParams;
    expect(query.get('kmsKeyName')).toBe(KMS);
    expect(query.get('uploadType')).toBe('multipart');
    expect(query.has('predefinedAcl')).toBe(false);
    expect(sent().some((r) => /\/acl(\/|$|\?)/.test(r.url))).toBe(false);
    expect(await readAll((await storage.get(k)).body)).toEqual(data);
    await storage.delete(k);
  });

  it('no list call: every public operation, recorded, never GETs an object listing (/b/<bucket>/o)', async () => {
    const { storage, sent } = storageThroughProxy();
    const k = contractKey();
    await storage.ping();
    await storage.put(k, Readable.from([randomBytes(10)]), { contentType: 'image/png' });
    await storage.head(k);
    await storage.head(contractKey());
    await readAll((await storage.get(k, { start: 1, end: 3 })).body);
    await failure(storage.get(contractKey()));
    await storage.signedReadUrl(k, { expiresInSeconds: 60 });
    await storage.signedUploadUrl(k, { method: 'PUT', contentType: 'image/png', maxBytes: 10, expiresInSeconds: 60 });
    await storage.signedUploadUrl(k, { method: 'POST', contentType: 'image/png', maxBytes: 10, expiresInSeconds: 60 });
    await storage.delete(k);
    expect(sent().length).toBeGreaterThan(5);
    const listings = sent().filter((r) => r.method === 'GET' && /\/b\/[^/]+\/o\/?(\?|$)/.test(r.url));
    expect(listings).toEqual([]);
    expect(sent().some((r) => /\/b\/?(\?|$)/.test(r.url))).toBe(false);
  });

  it('a declared sha256 or length that does not match: refused, the upload request aborted, nothing stored', async () => {
    const { storage } = storageThroughProxy();
    const k = contractKey();
    const data = randomBytes(2000);
    expect(isDomainError(await failure(storage.put(k, Readable.from([data]), { contentType: 'image/png', sha256: '00'.repeat(32) })), 'checksum_mismatch')).toBe(true);
    // The same details as complete's size_mismatch; a longer body is cut off where it passes the declared size.
    expect(await failure(storage.put(k, Readable.from([data]), { contentType: 'image/png', contentLength: 2001 }))).toMatchObject({ code: 'size_mismatch', details: { declared_bytes: 2001, received_bytes: 2000 } });
    expect(await failure(storage.put(k, Readable.from([data]), { contentType: 'image/png', contentLength: 1999 }))).toMatchObject({ code: 'size_mismatch', details: { declared_bytes: 1999, received_bytes: 2000 } });
    await expect(storage.head(k)).resolves.toBeNull();
    const ok = createHash('sha256').update(data).digest('hex');
    await expect(storage.put(k, Readable.from([data]), { contentType: 'image/png', sha256: ok, contentLength: 2000 })).resolves.toEqual({ bytes: 2000 });
    await storage.delete(k);
  });

  it('a 400 from GCS (our request, not the client\'s) is storage_unavailable for every operation, never internal_error', async () => {
    const server = createServer((request, response) => {
      request.resume();
      request.on('end', () => response.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 400, message: 'Bad Request', errors: [{ reason: 'invalid', message: 'Bad Request' }] } })));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const storage = new GcsMediaStorage({ ...base, apiEndpoint: `http://127.0.0.1:${port}`, maxRetries: 0 });
    try {
      expect(await codesOfEveryOperation(storage)).toEqual(Array(5).fill('storage_unavailable'));
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('an unreachable endpoint is storage_unavailable for every operation', async () => {
    const storage = new GcsMediaStorage({ ...base, apiEndpoint: 'http://127.0.0.1:9' });
    expect(await codesOfEveryOperation(storage)).toEqual(Array(5).fill('storage_unavailable'));
  });

  // The write answered storage_unavailable, so the upload must not go on behind the caller's back:
  // the library kept waiting for the session, then sent the whole body to it, and GCS stored an
  // object no row will ever point at.
  it('a resumable upload given up for a silent session request sends nothing once the session answers late', async () => {
    const received: string[] = [];
    const server = createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        received.push(`${request.method} ${new URL(request.url ?? '/', 'http://x').pathname}`);
        if (request.method === 'POST') setTimeout(() => response.writeHead(200, { location: `http://127.0.0.1:${port}/session` }).end(), 600);
        else response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const storage = new GcsMediaStorage({ ...base, apiEndpoint: `http://127.0.0.1:${port}`, maxRetries: 0, requestTimeoutMs: 300, resumable: true });
    try {
      const key = contractKey('png');
      const outcome = await storage.put(key, Readable.from([randomBytes(10)]), { contentType: 'image/png' }).then(
        () => 'stored',
        (error: unknown) => (isDomainError(error) ? error.code : String(error)),
      );
      expect(outcome).toBe('storage_unavailable');
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      expect(received).toEqual([`POST /upload/storage/v1/b/${base.bucket}/o`]);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  }, 10_000);

  // The library sets no timeout on a resumable upload's requests (its `timeout` option is "not
  // available for resumable uploads"): without the adapter's own watch, a bucket that takes the
  // session request and never answers held put until the connection died.
  it.each([false, true])('an endpoint that takes the request and never answers is storage_unavailable after requestTimeoutMs, for every operation (resumable: %s)', async (resumable) => {
    const server = createServer((request) => request.resume());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const storage = new GcsMediaStorage({ ...base, apiEndpoint: `http://127.0.0.1:${port}`, maxRetries: 0, requestTimeoutMs: 300, resumable });
    try {
      const started = Date.now();
      expect(await codesOfEveryOperation(storage)).toEqual(Array(5).fill('storage_unavailable'));
      expect(Date.now() - started).toBeLessThan(5 * 2_000);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  }, 15_000);
});

describe('GcsMediaStorage.putNew: ifGenerationMatch=0 (the emulator ignores it: a second write replaces the first)', () => {
  const uploadsOf = (requests: RecordedRequest[]) => requests.filter((r) => r.method === 'POST' && r.url.startsWith('/upload/storage/v1/'));
  const queryOf = (request: RecordedRequest) => new URL(request.url, 'http://proxy').searchParams;

  it('SENDS ifGenerationMatch=0 on the upload, single-request and resumable, and put never SENDS it', async () => {
    for (const resumable of [false, true]) {
      const { storage, sent } = storageThroughProxy({ resumable });
      const k = contractKey();
      await storage.putNew(k, Readable.from([randomBytes(1000)]), { contentType: 'image/png' });
      const [upload] = uploadsOf(sent());
      expect(queryOf(upload).get('uploadType')).toBe(resumable ? 'resumable' : 'multipart');
      expect(queryOf(upload).get('ifGenerationMatch')).toBe('0');
      await storage.delete(k);
      const again = storageThroughProxy({ resumable });
      await again.storage.put(k, Readable.from([randomBytes(1000)]), { contentType: 'image/png' });
      expect(uploadsOf(again.sent()).map((r) => queryOf(r).has('ifGenerationMatch'))).toEqual([false]);
      await again.storage.delete(k);
    }
  });

  it("an object at the key: GCS's 412 is ObjectExistsError, and the first object stays", async () => {
    // A proxy in front of the emulator refuses an upload with ifGenerationMatch=0 to an occupied
    // key with the answer GCS gives (its JSON API error, conditionNotMet).
    const plain = new GcsMediaStorage(base);
    const refused: string[] = [];
    const enforcing = await startRecordingProxy(base.apiEndpoint!, {
      answer: async (request) => {
        const query = queryOf(request);
        if (query.get('ifGenerationMatch') !== '0' || !(await plain.head(query.get('name') ?? ''))) return undefined;
        refused.push(query.get('uploadType') ?? '');
        const message = 'At least one of the pre-conditions you specified did not hold.';
        return {
          status: 412,
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ error: { code: 412, message, errors: [{ message, domain: 'global', reason: 'conditionNotMet', locationType: 'header', location: 'If-Match' }] } }),
        };
      },
    });
    try {
      for (const resumable of [false, true]) {
        const storage = new GcsMediaStorage({ ...base, apiEndpoint: enforcing.origin, resumable, maxRetries: 0 });
        const k = contractKey();
        const first = randomBytes(1000);
        await storage.putNew(k, Readable.from([first]), { contentType: 'image/png' });
        const error = await failure(storage.putNew(k, Readable.from([randomBytes(1000)]), { contentType: 'image/png' }));
        expect(error).toBeInstanceOf(ObjectExistsError);
        expect((error as ObjectExistsError).key).toBe(k);
        expect(await readAll((await storage.get(k)).body)).toEqual(first);
        // put sends no precondition, so the proxy lets it through: the 412 above was putNew's alone.
        await storage.put(k, Readable.from([first]), { contentType: 'image/png' });
        await storage.delete(k);
      }
      expect(refused).toEqual(['multipart', 'resumable']);
    } finally {
      await enforcing.close();
    }
  });
});

describeStalledReads('GcsMediaStorage', () => ({
  origin: base.apiEndpoint!,
  direct: () => new GcsMediaStorage(base),
  withShortTimeout: (origin = base.apiEndpoint!) => new GcsMediaStorage({ ...base, apiEndpoint: origin, maxRetries: 0, requestTimeoutMs: 300 }),
  readsObject: (request) => request.method === 'GET' && request.url.includes('alt=media'),
}));

describe('GcsMediaStorage: V4 signed URLs and POST policies, as GENERATED (the emulator checks no signature, expiry or policy)', () => {
  const upload = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const serve = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = (k: typeof upload) => ({
    privatePem: k.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: k.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  });
  const uploader = { client_email: 'media-upload@jan-test.iam.gserviceaccount.com', ...pem(upload) };
  const server = { client_email: 'media-serve@jan-test.iam.gserviceaccount.com', ...pem(serve) };
  const signing = () =>
    storageThroughProxy({
      uploadSigner: { client_email: uploader.client_email, private_key: uploader.privatePem },
      serveSigner: { client_email: server.client_email, private_key: server.privatePem },
    }).storage;

  it('signed PUT binds content-type, x-goog-content-length-range and the CMEK header, signed by the UPLOAD identity; the signature verifies', async () => {
    const storage = signing();
    const signed = await storage.signedUploadUrl(contractKey(), { method: 'PUT', contentType: 'image/png', maxBytes: 5000, expiresInSeconds: 300 });
    expect(signed.headers).toEqual({ 'content-type': 'image/png', 'x-goog-content-length-range': '1,5000', 'x-goog-encryption-kms-key-name': KMS });
    const check = checkV4(signed.url, 'PUT', signed.headers, uploader.publicPem);
    expect(check.signedHeaders).toEqual(['content-type', 'host', 'x-goog-content-length-range', 'x-goog-encryption-kms-key-name']);
    expect(check.credential).toMatch(/^media-upload@jan-test\.iam\.gserviceaccount\.com\//);
    expect(check.expires).toBe(300);
    expect(check.valid).toBe(true);
    // What GCS would refuse: another type, a wider size range, or another signer's key.
    expect(checkV4(signed.url, 'PUT', { ...signed.headers, 'content-type': 'text/html' }, uploader.publicPem).valid).toBe(false);
    expect(checkV4(signed.url, 'PUT', { ...signed.headers, 'x-goog-content-length-range': '0,999999999' }, uploader.publicPem).valid).toBe(false);
    expect(checkV4(signed.url, 'PUT', signed.headers, server.publicPem).valid).toBe(false);
  });

  it('signed PUT with a declared size pins the range to exactly that size', async () => {
    const signed = await signing().signedUploadUrl(contractKey(), { method: 'PUT', contentType: 'image/webp', contentLength: 1234, maxBytes: 5000, expiresInSeconds: 60 });
    expect(signed.headers['x-goog-content-length-range']).toBe('1234,1234');
    expect(checkV4(signed.url, 'PUT', signed.headers, uploader.publicPem).valid).toBe(true);
  });

  it('signed read URL asks for response-content-type/-disposition, signs host, is signed by the SERVE identity; the signature verifies', async () => {
    const signed = await signing().signedReadUrl(contractKey(), { expiresInSeconds: 120, contentType: 'image/png', contentDisposition: 'inline' });
    const url = new URL(signed.url);
    expect(url.searchParams.get('response-content-type')).toBe('image/png');
    expect(url.searchParams.get('response-content-disposition')).toBe('inline');
    const check = checkV4(signed.url, 'GET', {}, server.publicPem);
    expect(check.signedHeaders).toEqual(['host']);
    expect(check.credential).toMatch(/^media-serve@jan-test\.iam\.gserviceaccount\.com\//);
    expect(check.expires).toBe(120);
    expect(check.valid).toBe(true);
    url.searchParams.set('response-content-type', 'text/html');
    expect(checkV4(url.toString(), 'GET', {}, server.publicPem).valid).toBe(false);
  });

  it('without separate signers, the data identity signs', async () => {
    const { storage } = storageThroughProxy();
    const signed = await storage.signedReadUrl(contractKey(), { expiresInSeconds: 60 });
    const publicPem = createPublicKey(privateKeyPem!).export({ type: 'spki', format: 'pem' }).toString();
    const check = checkV4(signed.url, 'GET', {}, publicPem);
    expect(check.credential.startsWith(`${clientEmail}/`)).toBe(true);
    expect(check.valid).toBe(true);
  });

  it('POST policy: content-length-range [1, maxBytes], Content-Type, the exact key, bucket and CMEK as conditions, signed by the UPLOAD identity', async () => {
    const k = contractKey();
    const post = await signing().signedUploadUrl(k, { method: 'POST', contentType: 'image/png', maxBytes: 7000, expiresInSeconds: 60 });
    expect(post.method).toBe('POST');
    expect(post.url).toBe(`${proxy.origin}/${base.bucket}`);
    const fields = post.fields!;
    const policy = JSON.parse(Buffer.from(fields.policy, 'base64').toString('utf8')) as { conditions: unknown[]; expiration: string };
    expect(policy.conditions).toEqual(
      expect.arrayContaining([
        ['content-length-range', 1, 7000],
        { 'Content-Type': 'image/png' },
        { key: k },
        { bucket: base.bucket },
        { 'x-goog-encryption-kms-key-name': KMS },
      ]),
    );
    expect(policy.conditions.some((c) => Array.isArray(c) && c[0] === 'starts-with')).toBe(false);
    expect(fields['x-goog-credential']).toMatch(/^media-upload@/);
    // V4 POST: the signature is RSA-SHA256 over the base64 policy.
    expect(verify('RSA-SHA256', Buffer.from(fields.policy), createPublicKey(uploader.publicPem), Buffer.from(fields['x-goog-signature'], 'hex'))).toBe(true);
  });
});
