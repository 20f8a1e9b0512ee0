import { DomainError, isUserId, USER_ID_RULE, type Principal } from '@jan/domain';
import type { ApiKeyEntry } from '../config/media-config';
import type { JwtVerifier } from './jwt-verifier';
import { KeyRing } from './key-ring';

export type Headers = Record<string, string | string[] | undefined>;

export interface PrincipalResolverOptions {
  serviceKeys: KeyRing<string>;
  adminKeys: KeyRing<string>;
  apiKeys: KeyRing<Omit<ApiKeyEntry, 'key'>>;
  /** Null when AUTH_ENABLED is off: bearer tokens are then ignored. */
  jwt: JwtVerifier | null;
}

/**
 * Establishes who is calling, in one place. First credential present wins, in this order:
 * `X-Media-Admin-Key`, `X-Media-Service-Key`, `Authorization: Bearer` (when AUTH_ENABLED),
 * `X-API-Key`. A credential that is present but wrong is a 401, never a fall-through to the
 * next one; so a stolen-but-revoked key cannot be combined with a weaker valid one.
 * Services and admins act for the user named in `X-Jan-User-Id`; users only ever for themselves.
 */
export class PrincipalResolver {
  constructor(private readonly options: PrincipalResolverOptions) {}

  static fromConfig(config: {
    serviceKeys: string[];
    adminKeys: string[];
    apiKeys: ApiKeyEntry[];
    jwt: JwtVerifier | null;
  }): PrincipalResolver {
    return new PrincipalResolver({
      serviceKeys: KeyRing.fingerprinted(config.serviceKeys, 'service-key'),
      adminKeys: KeyRing.fingerprinted(config.adminKeys, 'admin-key'),
      apiKeys: new KeyRing(config.apiKeys.map(({ key, kind, name }) => ({ key, value: { kind, name } }))),
      jwt: config.jwt,
    });
  }

  /** The ids of the configured service keys, in order: `service:<id>` owns what a key uploads for nobody. */
  get serviceKeyIds(): string[] {
    return this.options.serviceKeys.values;
  }

  /** The ids of the configured admin keys, in order: the audit actor of what each key does. */
  get adminKeyIds(): string[] {
    return this.options.adminKeys.values;
  }

  async resolve(headers: Headers): Promise<Principal> {
    const adminKey = single(headers['x-media-admin-key']);
    if (adminKey !== undefined) {
      const adminId = this.options.adminKeys.size ? this.options.adminKeys.match(adminKey) : null;
      if (!adminId) throw new DomainError('unauthorized', 'invalid admin key');
      return { kind: 'admin', adminId, actingFor: actingFor(headers) };
    }

    const serviceKey = single(headers['x-media-service-key']);
    if (serviceKey !== undefined) {
      const serviceId = this.options.serviceKeys.match(serviceKey);
      if (!serviceId) throw new DomainError('unauthorized', 'invalid service key');
      return { kind: 'service', serviceId, actingFor: actingFor(headers) };
    }

    const authorization = single(headers['authorization']);
    if (authorization !== undefined && this.options.jwt) {
      const match = /^Bearer[ ]+([A-Za-z0-9._~+/-]+=*)\s*$/i.exec(authorization);
      if (!match) throw new DomainError('unauthorized', 'Authorization must be "Bearer <token>"');
      // The token first: a bad one is a 401 whatever the header says, and X-Jan-User-Id means
      // something (and is checked) only for an admin's token; an end user's is ignored.
      const principal = await this.options.jwt.verify(match[1]);
      return principal.kind === 'admin' ? { ...principal, actingFor: actingFor(headers) } : principal;
    }

    const apiKey = single(headers['x-api-key']);
    if (apiKey !== undefined) {
      const entry = this.options.apiKeys.size ? this.options.apiKeys.match(apiKey) : null;
      if (!entry) throw new DomainError('unauthorized', 'invalid API key');
      switch (entry.kind) {
        case 'user':
          return { kind: 'user', subject: entry.name };
        case 'admin':
          return { kind: 'admin', adminId: entry.name, actingFor: actingFor(headers) };
        case 'service':
          return { kind: 'service', serviceId: entry.name, actingFor: actingFor(headers) };
      }
    }

    throw new DomainError(
      'unauthorized',
      this.options.jwt
        ? 'missing credentials: send Authorization: Bearer <token>, X-Media-Service-Key or X-API-Key'
        : 'missing credentials: send X-Media-Service-Key or X-API-Key',
    );
  }
}

function actingFor(headers: Headers): string | null {
  const raw = single(headers['x-jan-user-id'])?.trim();
  if (raw === undefined) return null;
  // Sent but empty is a caller's bug, not "no user": taken as absent, the upload was the service's own.
  if (!isUserId(raw)) throw new DomainError('invalid_request', `X-Jan-User-Id must be ${USER_ID_RULE}`);
  return raw;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
