import { Logger } from '@nestjs/common';
import { DomainError, isReservedOwner, isUserId, type Principal } from '@jan/domain';
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey } from 'jose';

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
const ALLOWED_ALGORITHMS = ['RS256', 'ES256'];

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
    const cooldownMs = settings.jwksCooldownMs ?? 30_000;
    this.keys =
      keys ??
      withFailureCooldown(
        createRemoteJWKSet(new URL(settings.jwksUrl), { timeoutDuration: 5_000, cooldownDuration: cooldownMs, cacheMaxAge: 10 * 60_000 }),
        cooldownMs,
      );
  }

  /** The principal a token stands for; an admin acts for nobody until the caller names a user. */
  async verify(token: string): Promise<Principal> {
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
    // A subject such as `service:service-key-…` would be the owner of a service's own uploads.
    if (typeof subject === 'string' && isReservedOwner(subject)) throw new DomainError('unauthorized', 'token subject uses a reserved prefix (service: or admin:)');
    if (typeof subject !== 'string' || !isUserId(subject)) throw new DomainError('unauthorized', 'token subject is missing or invalid');
    if (rolesOf(payload).includes(this.settings.adminRole)) return { kind: 'admin', adminId: subject, actingFor: null };
    return { kind: 'user', subject };
  }

  private rejection(error: unknown): DomainError {
    const reason = verdictOf(error);
    if (reason) return new DomainError('unauthorized', reason);
    const code = (error as { code?: unknown } | null)?.code;
    // The key set could not be fetched (timeout, network, bad JSON): the token may be fine, so
    // this is our outage (503, retryable), not the caller's bad credentials (401).
    this.logger.warn({ event: 'auth.jwks_unavailable', code: typeof code === 'string' ? code : undefined, err: (error as Error)?.message });
    return new DomainError('auth_unavailable', 'token could not be verified right now: the issuer key set is unavailable');
  }
}

/** Why a token is refused, when the error is a verdict on the token; undefined for an outage. */
function verdictOf(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? REASONS[code] : undefined;
}

/** What `createRemoteJWKSet` returns: the key getter, and the set it last fetched. */
export type RemoteKeySet = JWTVerifyGetKey & { jwks(): JSONWebKeySet | undefined };

/**
 * jose's remote key set applies its cooldown only after a fetch that succeeded, and drops its
 * cached keys once they are older than `cacheMaxAge` even when the fetch meant to replace them
 * fails. So while the issuer is down (or slow), every token fetched the set again, each waiting
 * the whole timeout, and made-up `kid`s hammered a struggling issuer. After a failed fetch, for
 * one cooldown, nothing is fetched; tokens are checked against the keys last fetched (rotations
 * are rare, and those keys were the issuer's), and one whose key is not among them is refused
 * with the outage (`auth_unavailable`, 503: its key may be new).
 */
export function withFailureCooldown(remote: RemoteKeySet, cooldownMs: number, now: () => number = Date.now): JWTVerifyGetKey {
  let failedAt = Number.NEGATIVE_INFINITY;
  let failure: unknown;
  let local: { of: JSONWebKeySet; keys: ReturnType<typeof createLocalJWKSet> } | undefined;
  const fromLastFetched = (header: Parameters<JWTVerifyGetKey>[0], token: Parameters<JWTVerifyGetKey>[1]) => {
    const cached = remote.jwks();
    if (!cached) throw failure;
    if (local?.of !== cached) local = { of: cached, keys: createLocalJWKSet(cached) };
    return local.keys(header, token).catch((error: unknown) => {
      throw isNoMatchingKey(error) ? failure : error;
    });
  };
  return async (header, token) => {
    if (now() - failedAt < cooldownMs) return fromLastFetched(header, token);
    try {
      return await remote(header, token);
    } catch (error) {
      if (verdictOf(error)) throw error;
      failedAt = now();
      failure = error;
      return fromLastFetched(header, token);
    }
  };
}

function isNoMatchingKey(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'ERR_JWKS_NO_MATCHING_KEY';
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
