import { createHash, createHmac } from 'node:crypto';

/**
 * An independent SigV4 check of presigned URLs and POST policies, written from AWS's
 * "Signature Version 4 signing process" document, because s3rver does not verify signatures.
 * It recomputes what S3 would and compares; it shares no code with the adapter or the SDK.
 */
const encode = (value: string) => encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

function signingKey(secret: string, day: string, region: string): Buffer {
  const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), 's3'), 'aws4_request');
}

export interface PresignedCheck {
  valid: boolean;
  signedHeaders: string[];
  credential: string;
  expiresSeconds: number;
}

/** Would S3 accept this presigned URL sent as `method` with `headers`, signed with `secret`? */
export function checkPresignedUrl(rawUrl: string, method: string, headers: Record<string, string>, secret: string): PresignedCheck {
  const url = new URL(rawUrl);
  const params = [...url.searchParams.entries()];
  const get = (name: string) => url.searchParams.get(name) ?? '';
  const signedHeaders = get('X-Amz-SignedHeaders').split(';');
  const credential = get('X-Amz-Credential');
  const [, day, region] = credential.split('/');
  const all: Record<string, string> = { host: url.host };
  for (const [name, value] of Object.entries(headers)) all[name.toLowerCase()] = value;
  const canonicalQuery = params
    .filter(([name]) => name !== 'X-Amz-Signature')
    .map(([name, value]) => [encode(name), encode(value)])
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : 1))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
  const canonicalHeaders = signedHeaders.map((name) => `${name}:${(all[name] ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  const canonicalRequest = [method, url.pathname, canonicalQuery, canonicalHeaders, signedHeaders.join(';'), 'UNSIGNED-PAYLOAD'].join('\n');
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    get('X-Amz-Date'),
    credential.split('/').slice(1).join('/'),
    createHash('sha256').update(canonicalRequest).digest('hex'),
  ].join('\n');
  const expected = createHmac('sha256', signingKey(secret, day, region)).update(stringToSign).digest('hex');
  const everySignedHeaderSent = signedHeaders.every((name) => name in all);
  return { valid: everySignedHeaderSent && expected === get('X-Amz-Signature'), signedHeaders, credential, expiresSeconds: Number(get('X-Amz-Expires')) };
}

/** Would S3 accept this POST policy's signature? Also returns the decoded policy. */
export function checkPostPolicy(fields: Record<string, string>, secret: string): { valid: boolean; policy: { expiration: string; conditions: unknown[] } } {
  const [, day, region] = fields['X-Amz-Credential'].split('/');
  const expected = createHmac('sha256', signingKey(secret, day, region)).update(fields.Policy).digest('hex');
  return { valid: expected === fields['X-Amz-Signature'], policy: JSON.parse(Buffer.from(fields.Policy, 'base64').toString('utf8')) };
}
