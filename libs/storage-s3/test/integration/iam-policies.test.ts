import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { S3MediaStorage, type S3ClientRole, type S3MediaStorageOptions } from '../../src';
import { contractKey, readAll } from '../../../storage-local/test/contract/media-storage.contract';
import { allowLoopbackOnly } from '../../../storage-local/test/contract/loopback-only';
import { s3TestEnv } from './s3-test-env';

// infra/iam against what the adapter does: every request it sends (recorded on the SDK clients
// it makes) and every request a URL or POST policy it hands out lets a client send. Nothing here
// lists the adapter's calls by hand: a new call shows up in the recording, and fails until the
// tables below say which IAM and KMS permissions it needs and infra/iam grants them.

const IAM = join(__dirname, '../../../../infra/iam');
const policy = (name: string) => JSON.parse(readFileSync(join(IAM, name), 'utf8')) as Policy;
/** The bucket the policies in infra/iam are written for. */
const POLICY_BUCKET = 'jan-media';
const MIB = 1024 * 1024;

interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}
interface Policy {
  Statement: Statement[];
}

/** One S3 request as IAM sees it: who sends it, the API call, the key, the request's headers. */
interface Call {
  identity: 'upload' | 'serve';
  operation: string;
  key?: string;
  headers: Record<string, string>;
}

/** The IAM action that authorizes each S3 API call (AWS: "Required permissions for Amazon S3 API operations"). */
const S3_ACTION: Record<string, string> = {
  PutObject: 's3:PutObject',
  PostObject: 's3:PutObject',
  CreateMultipartUpload: 's3:PutObject',
  UploadPart: 's3:PutObject',
  CompleteMultipartUpload: 's3:PutObject',
  AbortMultipartUpload: 's3:AbortMultipartUpload',
  DeleteObject: 's3:DeleteObject',
  GetObject: 's3:GetObject',
  HeadObject: 's3:GetObject',
  HeadBucket: 's3:ListBucket',
};

/**
 * What SSE-KMS asks of the caller's identity on the key (AWS: a single PUT needs GenerateDataKey;
 * a multipart upload needs GenerateDataKey to start and Decrypt for its parts and to complete;
 * reading an object needs Decrypt; HEAD and DELETE touch no key material).
 */
const KMS_ACTIONS: Record<string, string[]> = {
  PutObject: ['kms:GenerateDataKey'],
  PostObject: ['kms:GenerateDataKey'],
  CreateMultipartUpload: ['kms:GenerateDataKey'],
  UploadPart: ['kms:Decrypt'],
  CompleteMultipartUpload: ['kms:Decrypt'],
  AbortMultipartUpload: [],
  DeleteObject: [],
  GetObject: ['kms:Decrypt'],
  HeadObject: [],
  HeadBucket: [],
};

const ROLE_FILE = { upload: 's3-upload-role.json', serve: 's3-serve-role.json' } as const;
const IDENTITY: Record<S3ClientRole, Call['identity']> = { write: 'upload', 'sign-upload': 'upload', read: 'serve', 'sign-read': 'serve' };

const list = (value: string | string[]) => (Array.isArray(value) ? value : [value]);
const glob = (pattern: string) => new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
const matches = (patterns: string | string[], value: string) => list(patterns).some((p) => glob(p).test(value));
const arn = (key?: string) => (key === undefined ? `arn:aws:s3:::${POLICY_BUCKET}` : `arn:aws:s3:::${POLICY_BUCKET}/${key}`);
const lower = (headers: Record<string, string>) => Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), String(v)]));

/** The condition keys S3 sets for a request (the subset the bucket policy uses). */
function conditionKeys(call: Call): Record<string, string | undefined> {
  return {
    's3:x-amz-server-side-encryption': call.headers['x-amz-server-side-encryption'],
    's3:x-amz-server-side-encryption-aws-kms-key-id': call.headers['x-amz-server-side-encryption-aws-kms-key-id'],
    // The service and its clients reach S3 over HTTPS in production (the stand-in is plain HTTP).
    'aws:SecureTransport': 'true',
  };
}

/**
 * IAM's condition operators, as far as the bucket policy uses them. A key the request does not
 * carry makes a negated operator (and any …IfExists) true and a positive one false: so a Deny on
 * `StringNotEquals` alone also refuses every request without the header.
 */
function conditionHolds(operator: string, key: string, expected: string | string[], context: Record<string, string | undefined>): boolean {
  const value = context[key];
  const wanted = list(expected);
  if (operator === 'Null') return (value === undefined) === (wanted[0] === 'true');
  if (value === undefined) return operator.endsWith('IfExists') || operator.startsWith('StringNot');
  switch (operator.replace(/IfExists$/, '')) {
    case 'StringEquals':
    case 'Bool':
      return wanted.includes(value);
    case 'StringNotEquals':
      return !wanted.includes(value);
    default:
      throw new Error(`the test does not know the condition operator ${operator}: teach it before using it in a policy`);
  }
}

function statementApplies(statement: Statement, action: string, resource: string, context: Record<string, string | undefined>): boolean {
  if (!matches(statement.Action, action) || !matches(statement.Resource, resource)) return false;
  return Object.entries(statement.Condition ?? {}).every(([operator, keys]) => Object.entries(keys).every(([key, expected]) => conditionHolds(operator, key, expected, context)));
}

/** The bucket policy's Deny statements that refuse `call`. */
function deniedBy(bucketPolicy: Policy, call: Call): string[] {
  const action = S3_ACTION[call.operation];
  return bucketPolicy.Statement.filter((s) => s.Effect === 'Deny' && statementApplies(s, action, arn(call.key), conditionKeys(call))).map((s) => s.Sid ?? '(no Sid)');
}

function allows(rolePolicy: Policy, action: string, resource: string): boolean {
  return rolePolicy.Statement.some((s) => s.Effect === 'Allow' && matches(s.Action, action) && matches(s.Resource, resource));
}

const { real, options: base } = s3TestEnv();
const SECRET = base.credentials?.secretAccessKey ?? '';

/** As the app's storage factory builds it (apps/media-api/src/infrastructure/storage/storage.factory.ts). */
function recordingStorage(extra: Partial<S3MediaStorageOptions> = {}) {
  const calls: Call[] = [];
  const storage = new S3MediaStorage({
    ...base,
    accessDeniedIsNotFound: true,
    pingKey: 'images/.readyz-probe',
    ...extra,
    configureClient: (client: S3Client, role) => {
      client.middlewareStack.add(
        (next, context) => async (args) => {
          const input = args.input as { Key?: string };
          const request = args.request as { headers: Record<string, string> };
          calls.push({ identity: IDENTITY[role], operation: String(context.commandName).replace(/Command$/, ''), key: input.Key, headers: lower(request.headers) });
          return next(args);
        },
        { step: 'deserialize', name: 'recordForIam' },
      );
    },
  });
  return { storage, calls };
}

/** Which identity signed a presigned URL or POST policy, from its credential scope. */
function signer(credential: string | null | undefined): Call['identity'] {
  if (credential?.startsWith('UPLOADKEY/')) return 'upload';
  if (credential?.startsWith('SERVEKEY/')) return 'serve';
  throw new Error(`unexpected signing credential ${credential}`);
}

/**
 * Every call of every public operation, on both prefixes the service uses (`images/` for stored
 * objects, `uploads/` for direct uploads that `complete` reads back and removes), and the requests
 * a client sends with what signedReadUrl and signedUploadUrl hand out.
 */
async function everyCall(): Promise<Call[]> {
  const { storage, calls } = recordingStorage();
  const signing = new S3MediaStorage({
    ...base,
    uploadCredentials: { accessKeyId: 'UPLOADKEY', secretAccessKey: SECRET },
    serveCredentials: { accessKeyId: 'SERVEKEY', secretAccessKey: SECRET },
  });
  try {
    await storage.ping();
    for (const key of [contractKey(), contractKey().replace(/^images\//, 'uploads/')]) {
      const failing = async function* () {
        yield randomBytes(6 * MIB);
        throw new Error('client went away');
      };
      await storage.put(key, Readable.from([randomBytes(10)]), { contentType: 'image/png' });
      await storage.putNew(contractKey(), Readable.from([randomBytes(10)]), { contentType: 'image/png' });
      await storage.put(key, Readable.from([randomBytes(11 * MIB)]), { contentType: 'image/png' });
      await storage.put(key, Readable.from(failing()), { contentType: 'image/png' }).catch(() => undefined);
      await storage.head(key);
      await readAll((await storage.get(key)).body);
      await readAll((await storage.get(key, { start: 0, end: 9 })).body);
      await storage.delete(key);
      await storage.head(key);
      await storage.get(key).catch(() => undefined);

      const read = new URL((await signing.signedReadUrl(key, { expiresInSeconds: 60 })).url);
      calls.push({ identity: signer(read.searchParams.get('X-Amz-Credential')), operation: 'GetObject', key, headers: {} });
      const put = await signing.signedUploadUrl(key, { method: 'PUT', contentType: 'image/png', maxBytes: 1000, expiresInSeconds: 60 });
      calls.push({ identity: signer(new URL(put.url).searchParams.get('X-Amz-Credential')), operation: 'PutObject', key, headers: lower(put.headers) });
      const post = await signing.signedUploadUrl(key, { method: 'POST', contentType: 'image/png', maxBytes: 1000, expiresInSeconds: 60 });
      // A POST's form fields are what S3 evaluates the bucket policy's header conditions on.
      calls.push({ identity: signer(post.fields?.['X-Amz-Credential']), operation: 'PostObject', key: post.fields?.key, headers: lower(post.fields ?? {}) });
    }
    return calls;
  } finally {
    storage.destroy();
    signing.destroy();
  }
}

let lift: (() => void) | undefined;
let calls: Call[];
beforeAll(async () => {
  if (real) throw new Error('these tests record requests against the s3rver stand-in; unset TEST_S3_TARGET');
  lift = allowLoopbackOnly();
  calls = await everyCall();
}, 60_000);
afterAll(() => lift?.());

describe('infra/iam against the calls the S3 adapter makes', () => {
  it('every call the adapter makes is one the tables know (a new call must be added with its IAM and KMS permissions)', () => {
    const unknown = [...new Set(calls.map((c) => c.operation))].filter((op) => !(op in S3_ACTION) || !(op in KMS_ACTIONS));
    expect(unknown).toEqual([]);
    // The recording covered writes (single and multipart, failed and aborted), reads and deletes.
    expect(new Set(calls.map((c) => c.operation))).toEqual(
      new Set(['GetObject', 'PutObject', 'PostObject', 'CreateMultipartUpload', 'UploadPart', 'CompleteMultipartUpload', 'AbortMultipartUpload', 'HeadObject', 'DeleteObject']),
    );
  });

  it.each(['upload', 'serve'] as const)('the %s role allows every S3 and KMS action its calls need, and nothing else', (identity) => {
    const role = policy(ROLE_FILE[identity]);
    const own = calls.filter((c) => c.identity === identity);
    const missing = own.filter((c) => !allows(role, S3_ACTION[c.operation], arn(c.key))).map((c) => `${S3_ACTION[c.operation]} on ${c.key} (${c.operation})`);
    const needed = new Set(own.flatMap((c) => [S3_ACTION[c.operation], ...KMS_ACTIONS[c.operation]]));
    // On the media key alone (its ARN is the operator's to fill in), never on every key.
    const missingKms = [...needed].filter((a) => a.startsWith('kms:') && !allows(role, a, 'arn:aws:kms:eu-west-1:111122223333:key/REPLACE-WITH-KEY-ID'));
    expect([...new Set([...missing, ...missingKms])]).toEqual([]);
    // Exactly those actions: no wildcard, no List*, nothing the adapter never asks for.
    const granted = role.Statement.filter((s) => s.Effect === 'Allow').flatMap((s) => list(s.Action));
    expect(granted.filter((a) => a.includes('*'))).toEqual([]);
    expect(new Set(granted)).toEqual(needed);
  });

  it('the bucket policy refuses none of the calls the service makes or the requests its presigned URLs and POST policies allow', () => {
    const bucketPolicy = policy('s3-bucket-policy.json');
    const refused = calls.map((c) => ({ call: `${c.operation} ${c.key} (${c.identity})`, by: deniedBy(bucketPolicy, c) })).filter((r) => r.by.length > 0);
    expect(refused).toEqual([]);
  });

  it('the bucket policy still refuses plain HTTP, and an upload that asks for another encryption than SSE-KMS', () => {
    const bucketPolicy = policy('s3-bucket-policy.json');
    const put: Call = { identity: 'upload', operation: 'PutObject', key: 'images/x.png', headers: { 'x-amz-server-side-encryption': 'AES256' } };
    expect(deniedBy(bucketPolicy, put)).not.toEqual([]);
    const plainHttp = bucketPolicy.Statement.filter((s) => s.Effect === 'Deny' && matches(s.Action, 's3:GetObject') && s.Condition?.Bool?.['aws:SecureTransport'] === 'false');
    expect(plainHttp.map((s) => list(s.Resource))).toEqual([[arn(), arn('*')]]);
  });

  it('an upload that names no encryption is still SSE-KMS: the bucket default encryption is aws:kms', () => {
    const encryption = JSON.parse(readFileSync(join(IAM, 's3-bucket-encryption.json'), 'utf8')) as {
      Rules: { ApplyServerSideEncryptionByDefault: { SSEAlgorithm: string }; BucketKeyEnabled?: boolean }[];
    };
    expect(encryption.Rules.map((r) => r.ApplyServerSideEncryptionByDefault.SSEAlgorithm)).toEqual(['aws:kms']);
  });

  it('lifecycle: every key a multipart upload starts on is covered by AbortIncompleteMultipartUpload, and uploads/ expires', () => {
    const lifecycle = JSON.parse(readFileSync(join(IAM, 's3-lifecycle.json'), 'utf8')) as {
      Rules: { Status: string; Filter: { Prefix?: string }; Expiration?: { Days: number }; AbortIncompleteMultipartUpload?: { DaysAfterInitiation: number } }[];
    };
    const enabled = lifecycle.Rules.filter((r) => r.Status === 'Enabled');
    const aborting = enabled.filter((r) => r.AbortIncompleteMultipartUpload);
    const multipartKeys = calls.filter((c) => c.operation === 'CreateMultipartUpload').map((c) => c.key!);
    expect(multipartKeys.some((k) => k.startsWith('images/'))).toBe(true);
    expect(multipartKeys.filter((k) => !aborting.some((r) => k.startsWith(r.Filter.Prefix ?? '')))).toEqual([]);
    // Direct uploads are the only objects that expire; the stored images under images/ never do.
    expect(enabled.filter((r) => r.Expiration).map((r) => [r.Filter.Prefix, r.Expiration!.Days])).toEqual([['uploads/', 1]]);
  });
});
