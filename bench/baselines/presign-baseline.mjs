// Irreducible work of presign on the local backend: one HMAC-SHA256 over the URL's facts.
import { createHmac } from 'node:crypto';
import { json, listen } from './listen.mjs';

const secret = 'bench-baseline-signing-secret-0123456789';
const ttlSeconds = 900;

listen((req, res) => {
  const id = req.url.split('/')[3] ?? 'jan_x';
  const expires = Math.floor(Date.now() / 1000) + ttlSeconds;
  const key = `images/${id}.png`;
  const sig = createHmac('sha256', secret).update(['read', key, String(expires), 'image/png', 'inline'].join('\n')).digest('base64url');
  const url = `http://127.0.0.1/v1/files/${key}?expires=${expires}&ct=image%2Fpng&cd=inline&kid=k1&sig=${sig}`;
  json(res, 200, { id, url, expires_in: ttlSeconds, expires_at: new Date(expires * 1000).toISOString() });
});
