import type { FastifyBodyParser, FastifyInstance } from 'fastify';

/**
 * A JSON body kept as its bytes, for a route that reads JSON text itself instead of having it
 * parsed into objects (resolve: see `readResolveBody`). Routes opt in with
 * `@RouteConfig({ rawJson: true })`; every other route gets Fastify's JSON parser unchanged.
 */
export class RawJsonBody {
  constructor(readonly bytes: Buffer) {}
}

export interface RawJsonRouteConfig {
  rawJson?: boolean;
}

/** The `application/json` parser: raw bytes for opted-in routes, Fastify's default elsewhere. */
export function jsonBodyParser(fastify: FastifyInstance): FastifyBodyParser<Buffer> {
  const { onProtoPoisoning, onConstructorPoisoning } = fastify.initialConfig;
  const parse = fastify.getDefaultJsonParser(onProtoPoisoning ?? 'error', onConstructorPoisoning ?? 'error');
  return (request, body, done) => {
    const config = request.routeOptions.config as RawJsonRouteConfig | undefined;
    // An empty body gets the default parser's own error on every route.
    if (config?.rawJson && body.length > 0) done(null, new RawJsonBody(body));
    else parse(request, body as unknown as string, done);
  };
}
