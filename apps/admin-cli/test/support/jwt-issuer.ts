import { generateKeyPairSync, sign } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A JWKS on loopback and RS256 tokens signed with its key: what the service's AUTH_* settings point at. */
export interface JwtIssuer {
  issuer: string;
  jwksUrl: string;
  /** A token for `sub`, valid for an hour, carrying `roles` in `realm_access.roles`. */
  token(sub: string, roles?: string[]): string;
  stop(): Promise<void>;
}

export async function startJwtIssuer(): Promise<JwtIssuer> {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwks = JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'cli-e2e', alg: 'RS256', use: 'sig' }] });
  const server: Server = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(jwks);
  });
  await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return {
    issuer,
    jwksUrl: `${issuer}/jwks`,
    token(sub, roles = []) {
      const now = Math.floor(Date.now() / 1000);
      const unsigned = `${part({ alg: 'RS256', kid: 'cli-e2e', typ: 'JWT' })}.${part({ iss: issuer, aud: 'account', sub, iat: now, exp: now + 3600, realm_access: { roles } })}`;
      return `${unsigned}.${sign('sha256', Buffer.from(unsigned), privateKey).toString('base64url')}`;
    },
    stop: () => new Promise<void>((resolveStop) => server.close(() => resolveStop())),
  };
}
