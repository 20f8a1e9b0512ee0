import { createServer, type Server } from 'node:http';
import { createHmac } from 'node:crypto';
import { SignJWT, exportJWK, exportSPKI, generateKeyPair, type JWK, type CryptoKey } from 'jose';
import { startTestApp, type TestApp } from './test-app';

export const ISSUER = 'http://127.0.0.1/realms/jan';
export const AUDIENCE = 'account';
export const ADMIN_ROLE = 'media-admin';

/** The environment of an app that verifies this issuer's tokens, its key set fetched from `jwksUrl`. */
export function jwtAuthEnv(jwksUrl: string): Record<string, string> {
  return { AUTH_ENABLED: 'true', AUTH_ISSUER: ISSUER, AUTH_JWKS_URL: jwksUrl, ACCOUNT: AUDIENCE, AUTH_JWKS_COOLDOWN: '0' };
}

/**
 * An issuer on loopback and an app that verifies its tokens, with `env` on top (admin key, gateway
 * keys, rate limits…); `close` stops both.
 */
export async function startJwtTestApp(env: Record<string, string>): Promise<{ issuer: JwtIssuer; app: TestApp; close(): Promise<void> }> {
  const issuer = await JwtIssuer.start();
  try {
    const app = await startTestApp({ env: { ...jwtAuthEnv(issuer.jwksUrl), ...env } });
    return {
      issuer,
      app,
      close: async () => {
        await app.close();
        await issuer.close();
      },
    };
  } catch (error) {
    await issuer.close();
    throw error;
  }
}

interface SigningKey {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: CryptoKey;
  publicJwk: JWK;
  publicPem: string;
}

export interface MintOptions {
  sub?: string;
  roles?: string[];
  /** Top-level `roles` instead of Keycloak's `realm_access.roles`. */
  topLevelRoles?: string[];
  iss?: string;
  aud?: string;
  /** Seconds from now; negative for an expired token. */
  expiresIn?: number;
  notBefore?: number;
  kid?: string;
  /** Sign with a key the JWKS does not publish (under `kid`). */
  unpublished?: boolean;
  alg?: 'RS256' | 'ES256';
}

/**
 * A stand-in for Keycloak: RS256 and ES256 keys, a JWKS served on 127.0.0.1, and tokens minted on
 * demand, including the broken ones the access matrix needs. Counts JWKS fetches.
 */
export class JwtIssuer {
  readonly keys: SigningKey[] = [];
  private readonly unpublished = new Map<string, SigningKey>();
  private server!: Server;
  jwksUrl = '';
  fetches = 0;

  static async start(): Promise<JwtIssuer> {
    const issuer = new JwtIssuer();
    issuer.keys.push(await makeKey('rsa-1', 'RS256'), await makeKey('ec-1', 'ES256'));
    issuer.server = createServer((request, response) => {
      if (request.url !== '/certs') {
        response.writeHead(404).end();
        return;
      }
      issuer.fetches++;
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: issuer.keys.map((k) => k.publicJwk) }));
    });
    await new Promise<void>((resolve) => issuer.server.listen(0, '127.0.0.1', resolve));
    const address = issuer.server.address();
    issuer.jwksUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/certs`;
    return issuer;
  }

  /** Publishes a new key (rotation); tokens signed with it carry its kid. */
  async rotate(kid: string): Promise<void> {
    this.keys.push(await makeKey(kid, 'RS256'));
  }

  async mint(options: MintOptions = {}): Promise<string> {
    const key = await this.keyFor(options);
    const claims: Record<string, unknown> = { typ: 'Bearer', azp: 'jan-web' };
    if (options.roles) claims.realm_access = { roles: options.roles };
    if (options.topLevelRoles) claims.roles = options.topLevelRoles;
    const now = Math.floor(Date.now() / 1000);
    const jwt = new SignJWT(claims)
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
      .setIssuer(options.iss ?? ISSUER)
      .setAudience(options.aud ?? AUDIENCE)
      .setSubject(options.sub ?? 'alice')
      .setIssuedAt(now - 5)
      .setExpirationTime(now + (options.expiresIn ?? 300));
    if (options.notBefore !== undefined) jwt.setNotBefore(now + options.notBefore);
    return jwt.sign(key.privateKey);
  }

  /** `alg: none`: a payload with no signature at all. */
  unsigned(sub = 'alice'): string {
    const now = Math.floor(Date.now() / 1000);
    const header = b64({ alg: 'none', typ: 'JWT' });
    const payload = b64({ iss: ISSUER, aud: AUDIENCE, sub, iat: now, exp: now + 300 });
    return `${header}.${payload}.`;
  }

  /** HS256 "signed" with the RSA public key, the classic algorithm-confusion forgery. */
  hmacWithPublicKey(sub = 'alice'): string {
    const now = Math.floor(Date.now() / 1000);
    const key = this.keys[0];
    const signingInput = `${b64({ alg: 'HS256', typ: 'JWT', kid: key.kid })}.${b64({ iss: ISSUER, aud: AUDIENCE, sub, iat: now, exp: now + 300 })}`;
    const signature = createHmac('sha256', key.publicPem).update(signingInput).digest('base64url');
    return `${signingInput}.${signature}`;
  }

  /** A valid token of `from` whose payload is swapped for `to`'s subject, keeping the signature. */
  async tampered(from = 'bob', to = 'alice'): Promise<string> {
    const [header, payload, signature] = (await this.mint({ sub: from })).split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    claims.sub = to;
    return `${header}.${b64(claims)}.${signature}`;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async keyFor(options: MintOptions): Promise<SigningKey> {
    if (options.unpublished) {
      const kid = options.kid ?? 'unpublished';
      if (!this.unpublished.has(kid)) this.unpublished.set(kid, await makeKey(kid, options.alg ?? 'RS256'));
      return this.unpublished.get(kid)!;
    }
    if (options.kid) {
      const found = this.keys.find((k) => k.kid === options.kid);
      if (!found) throw new Error(`no published key ${options.kid}`);
      return found;
    }
    return this.keys.find((k) => k.alg === (options.alg ?? 'RS256'))!;
  }
}

async function makeKey(kid: string, alg: 'RS256' | 'ES256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, alg, privateKey, publicJwk, publicPem: await exportSPKI(publicKey) };
}

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}
