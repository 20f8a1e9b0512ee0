import { Logger } from '@nestjs/common';
import { DomainError, isUserId, type Principal } from '@jan/domain';
import { createRemoteJWKSet, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';

export interface JwtSettings {
  issuer: string;
  jwksUrl: string;
  /** Expected `aud` (Keycloak: the `ACCOUNT` variable, default `account`). */
  audience: string;
  /** Role that makes a token an admin, looked up in `realm_access.roles` and `roles`. */
  adminRole: string;
  clockSkewSeconds: number;
  /** Least time between two fetches of the key set (an unknown `kid` refetches after it). */
  jwksCooldownMs?: number;
}

/** Asymmetric only: `none` and HMAC (which a public key could be abused to forge) never pass. */
export const ALLOWED_ALGORITHMS = ['RS256', 'ES256'];

/** Safe, stable reasons per jose error code; the client learns why, never key material. */
const REASONS: Record<string, string> = {
  ERR_JWT_EXPIRED: 'token has expired',
  ERR_JWT_CLAIM_VALIDATION_FAILED: 'token claims are not valid here',
  ERR_JWS_SIGNATURE_VERIFICATION_FAILED: 'token signature is invalid',
  ERR_JWKS_NO_MATCHING_KEY: 'token is signed by an unknown key',
  ERR_JWKS_MULTIPLE_MATCHING_KEYS: 'token key is ambiguous',
  ERR_JOSE_ALG_NOT_ALLOWED: 'token algorithm is not allowed',
  ERR_JOSE_NOT_SUPPORTED: 'token algorithm is not allowed',
  ERR_JWS_INVALID: 'token is malformed',
  ERR_JWT_INVALID: 'token is malformed',
};

/**
 * Verifies end-user JWTs against the issuer's JWKS: signature (RS256/ES256), issuer, audience,
 * `exp`/`nbf` with a small skew. Keys are cached; a token with an unknown `kid` makes jose fetch
 * the set again (at most once per cooldown), which is how rotated keys are picked up.
 */
export class JwtVerifier {
  private readonly logger = new Logger('auth');
  private readonly keys: JWTVerifyGetKey;

  constructor(
    private readonly settings: JwtSettings,
    keys?: JWTVerifyGetKey,
  ) {
    this.keys =
      keys ??
      createRemoteJWKSet(new URL(settings.jwksUrl), {
        timeoutDuration: 5_000,
        cooldownDuration: settings.jwksCooldownMs ?? 30_000,
        cacheMaxAge: 10 * 60_000,
      });
  }

  /** The principal a token stands for; `actingFor` applies to admins only (users are themselves). */
  async verify(token: string, actingFor: string | null): Promise<Principal> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keys, {
        issuer: this.settings.issuer,
        audience: this.settings.audience,
        algorithms: ALLOWED_ALGORITHMS,
        clockTolerance: this.settings.clockSkewSeconds,
        requiredClaims: ['exp', 'sub'],
      }));
    } catch (error) {
      throw this.rejection(error);
    }
    const subject = payload.sub;
    if (typeof subject !== 'string' || !isUserId(subject)) throw new DomainError('unauthorized', 'token subject is missing or invalid');
    if (rolesOf(payload).includes(this.settings.adminRole)) return { kind: 'admin', adminId: subject, actingFor };
    return { kind: 'user', subject };
  }

  private rejection(error: unknown): DomainError {
    const code = (error as { code?: unknown } | null)?.code;
    const reason = typeof code === 'string' ? REASONS[code] : undefined;
    if (reason) return new DomainError('unauthorized', reason);
    // The key set could not be fetched (timeout, network, bad JSON): the token may be fine, so
    // this is our outage (503, retryable), not the caller's bad credentials (401).
    this.logger.warn({ event: 'auth.jwks_unavailable', code: typeof code === 'string' ? code : undefined, err: (error as Error)?.message });
    return new DomainError('auth_unavailable', 'token could not be verified right now: the issuer key set is unavailable');
  }
}

/** Keycloak puts realm roles in `realm_access.roles`; other issuers use a top-level `roles`. */
export function rolesOf(payload: JWTPayload): string[] {
  const roles: string[] = [];
  const realm = (payload as { realm_access?: { roles?: unknown } }).realm_access?.roles;
  const top = (payload as { roles?: unknown }).roles;
  for (const list of [realm, top]) {
    if (Array.isArray(list)) roles.push(...list.filter((r): r is string => typeof r === 'string'));
  }
  return roles;
}
