import { DomainError, type Principal } from '@jan/domain';
import { ServiceKeys } from './service-keys';

export type Headers = Record<string, string | string[] | undefined>;

const USER_ID = /^[\x21-\x7e]{1,200}$/;

/**
 * Establishes who is calling from request headers. Today: services by `X-Media-Service-Key`,
 * acting for the user named in `X-Jan-User-Id`. Token-based users and admins plug in here.
 */
export class PrincipalResolver {
  constructor(private readonly serviceKeys: ServiceKeys) {}

  resolve(headers: Headers): Principal {
    const serviceKey = single(headers['x-media-service-key']);
    if (serviceKey !== undefined) {
      const serviceId = this.serviceKeys.match(serviceKey);
      if (!serviceId) throw new DomainError('unauthorized', 'invalid service key');
      return { kind: 'service', serviceId, actingFor: actingFor(headers) };
    }
    throw new DomainError('unauthorized', 'missing credentials: send X-Media-Service-Key');
  }
}

function actingFor(headers: Headers): string | null {
  const raw = single(headers['x-jan-user-id'])?.trim();
  if (!raw) return null;
  if (!USER_ID.test(raw)) throw new DomainError('invalid_request', 'X-Jan-User-Id must be 1-200 printable characters');
  return raw;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
