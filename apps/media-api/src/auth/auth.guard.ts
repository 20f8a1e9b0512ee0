import { CanActivate, ExecutionContext, Injectable, SetMetadata, createParamDecorator } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Principal } from '@jan/domain';
import type { FastifyRequest } from 'fastify';
import { PrincipalResolver } from './principal-resolver';

const PUBLIC = 'jan:public';

/** Routes that need no credentials (health, docs, signed URLs). */
export const Public = () => SetMetadata(PUBLIC, true);

type WithPrincipal = FastifyRequest & { principal?: Principal };

/** Every route requires a principal unless marked `@Public()`. */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly resolver: PrincipalResolver,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC, [context.getHandler(), context.getClass()])) return true;
    const request = context.switchToHttp().getRequest<WithPrincipal>();
    request.principal = this.resolver.resolve(request.headers);
    return true;
  }
}

export const CurrentPrincipal = createParamDecorator((_data: unknown, context: ExecutionContext): Principal => {
  const principal = context.switchToHttp().getRequest<WithPrincipal>().principal;
  if (!principal) throw new Error('no principal on an authenticated route');
  return principal;
});
