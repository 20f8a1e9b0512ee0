import { createHmac, timingSafeEqual } from 'node:crypto';

export interface SigningKey {
  /** Short public identifier carried in URLs, so old keys keep verifying after rotation. */
  id: string;
  secret: string;
}

export type SignatureCheck = { ok: true } | { ok: false; reason: 'invalid_signature' | 'url_expired' };

/**
 * HMAC-SHA256 signatures over a canonical string of request facts. The first key signs; every key
 * verifies, so a new key can be put first while URLs signed with the old one are still live.
 */
export class UrlSigner {
  constructor(private readonly keys: readonly SigningKey[]) {
    if (keys.length === 0) throw new Error('UrlSigner needs at least one key');
    for (const key of keys) {
      if (!/^[A-Za-z0-9_-]{1,32}$/.test(key.id)) throw new Error(`signing key id ${JSON.stringify(key.id)} must be 1-32 url-safe characters`);
      if (Buffer.byteLength(key.secret) < 32) throw new Error(`signing key ${key.id} must be at least 32 bytes`);
    }
  }

  sign(facts: readonly string[]): { kid: string; sig: string } {
    const key = this.keys[0];
    return { kid: key.id, sig: this.mac(key.secret, facts) };
  }

  verify(facts: readonly string[], kid: string | undefined, sig: string | undefined, expiresAt: number, now: number): SignatureCheck {
    const key = this.keys.find((k) => k.id === kid);
    if (!key || !sig) return { ok: false, reason: 'invalid_signature' };
    const expected = Buffer.from(this.mac(key.secret, facts));
    const given = Buffer.from(sig);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return { ok: false, reason: 'invalid_signature' };
    if (!Number.isFinite(expiresAt) || now > expiresAt * 1000) return { ok: false, reason: 'url_expired' };
    return { ok: true };
  }

  private mac(secret: string, facts: readonly string[]): string {
    return createHmac('sha256', secret).update(facts.join('\n')).digest('base64url');
  }
}
