import { CanActivate, ExecutionContext, Injectable, NotFoundException, SetMetadata, createParamDecorator } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Principal } from '@jan/domain';
import type { FastifyRequest } from 'fastify';
import { RequestContextStore, requestContextOf } from '../infrastructure/audit/request-context';
import { PrincipalResolver } from './principal-resolver';

const PUBLIC = 'jan:public';

/** Routes that need no credentials (health, docs, signed URLs). */
export const Public = () => SetMetadata(PUBLIC, true);

export type WithPrincipal = FastifyRequest & { principal?: Principal };

export function isPublic(reflector: Reflector, context: ExecutionContext): boolean {
  return !!reflector.getAllAndOverride<boolean>(PUBLIC, [context.getHandler(), context.getClass()]);
}

/** Every route requires a principal unless marked `@Public()`. */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly resolver: PrincipalResolver,
    private readonly requestContexts: RequestContextStore,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (isPublic(this.reflector, context)) return true;
    const request = context.switchToHttp().getRequest<WithPrincipal>();
    // A copy, so that the object is this request's alone: events find the request through it.
    const principal: Principal = { ...(await this.resolver.resolve(request.headers)) };
    this.requestContexts.bind(principal, requestContextOf(request));
    request.principal = principal;
    return true;
  }
}

/**
 * Operator routes. Anyone authenticated who is not an admin gets exactly the 404 an unknown route
 * gets (same code and body), so the routes reveal nothing to them; bad credentials are still 401.
 */
@Injectable()
export class AdminGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const principal = context.switchToHttp().getRequest<WithPrincipal>().principal;
    if (principal?.kind !== 'admin') throw new NotFoundException();
    return true;
  }
}

export const CurrentPrincipal = createParamDecorator((_data: unknown, context: ExecutionContext): Principal => {
  const principal = context.switchToHttp().getRequest<WithPrincipal>().principal;
  if (!principal) throw new Error('no principal on an authenticated route');
  return principal;
});
