/**
 * The expiry a signed read URL states (for tests of every backend and the API alike): SigV4 (S3) and GCS v4 as their signing time (whole
 * seconds) plus a lifetime, the local backend as `expires` (epoch seconds).
 */
export function statedExpiry(url: string): Date {
  const query = new URL(url).searchParams;
  for (const vendor of ['Amz', 'Goog']) {
    const date = query.get(`X-${vendor}-Date`);
    const expires = query.get(`X-${vendor}-Expires`);
    if (date && expires) {
      const [, y, mo, d, h, mi, se] = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(date)!;
      return new Date(Date.UTC(+y, +mo - 1, +d, +h, +mi, +se) + Number(expires) * 1000);
    }
  }
  const expires = query.get('expires');
  if (!expires) throw new Error(`no expiry in ${url}`);
  return new Date(Number(expires) * 1000);
}

/**
 * The expiry a signed upload states: a form upload (POST) its policy's `expiration` (S3's
 * `Policy`, GCS's `policy` field, base64 JSON), a PUT its URL as `statedExpiry` reads it.
 */
export function statedUploadExpiry(upload: { url: string; fields?: Record<string, string> }): Date {
  const policy = upload.fields?.Policy ?? upload.fields?.policy;
  if (!policy) return statedExpiry(upload.url);
  const { expiration } = JSON.parse(Buffer.from(policy, 'base64').toString('utf8')) as { expiration: string };
  return new Date(expiration);
}
