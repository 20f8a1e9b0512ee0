import { createHmac } from 'node:crypto';

export interface PostPolicyCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export type PostPolicyCondition = Record<string, string> | [string, string | number, string | number];

export interface PostPolicyInput {
  bucket: string;
  key: string;
  region: string;
  credentials: PostPolicyCredentials;
  expiresAt: Date;
  now: Date;
  /** Fields the form must carry verbatim; each one is also pinned by an exact-match condition. */
  fields: Record<string, string>;
  /** Extra conditions, e.g. `['content-length-range', 1, max]`. */
  conditions: PostPolicyCondition[];
}

/**
 * Signs an S3 browser-upload (POST Object) policy with SigV4.
 *
 * Written here rather than taken from @aws-sdk/s3-presigned-post because that package pins an
 * exact, different @aws-sdk/client-s3 version (a second copy of the SDK for ~60 lines). The
 * algorithm is AWS's "Calculating a signature for POST" (the signature covers the base64 policy).
 */
export function signPostPolicy(input: PostPolicyInput): Record<string, string> {
  const amzDate = input.now.toISOString().replace(/[:-]|\.\d{3}/g, '');
  const day = amzDate.slice(0, 8);
  const credential = `${input.credentials.accessKeyId}/${day}/${input.region}/s3/aws4_request`;
  const signingFields: Record<string, string> = {
    'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
    'X-Amz-Credential': credential,
    'X-Amz-Date': amzDate,
    ...(input.credentials.sessionToken ? { 'X-Amz-Security-Token': input.credentials.sessionToken } : {}),
  };
  const fields = { key: input.key, ...input.fields, ...signingFields };
  const conditions: PostPolicyCondition[] = [{ bucket: input.bucket }];
  for (const [name, value] of Object.entries(fields)) conditions.push({ [name]: value });
  conditions.push(...input.conditions);
  const policy = Buffer.from(JSON.stringify({ expiration: input.expiresAt.toISOString(), conditions })).toString('base64');
  const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();
  const signingKey = hmac(hmac(hmac(hmac(`AWS4${input.credentials.secretAccessKey}`, day), input.region), 's3'), 'aws4_request');
  const signature = createHmac('sha256', signingKey).update(policy).digest('hex');
  return { ...fields, Policy: policy, 'X-Amz-Signature': signature };
}
