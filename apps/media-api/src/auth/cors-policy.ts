import type { FastifyInstance } from 'fastify';

const ALLOWED_METHODS = 'GET, HEAD, POST, PUT, DELETE, OPTIONS';
const ALLOWED_HEADERS = 'Authorization, Content-Type, X-Request-Id, X-Jan-User-Id, X-API-Key, Range, If-None-Match, Idempotency-Key, traceparent';
const EXPOSED_HEADERS = 'X-Request-Id, Retry-After, Content-Disposition, Content-Length, Content-Range, ETag, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset';

/**
 * CORS for the browser origins in MEDIA_CORS_ORIGINS, and for nobody else: other origins get no
 * CORS headers at all, so browsers refuse to hand them the response. Service and admin keys are
 * deliberately not in the allowed request headers: they never belong in a browser.
 */
export function registerCors(fastify: FastifyInstance, origins: readonly string[]): void {
  const allowed = new Set(origins);
  fastify.addHook('onRequest', (request, reply, done) => {
    const origin = request.headers.origin;
    if (typeof origin !== 'string' || !allowed.has(origin)) {
      if (origin !== undefined) void reply.header('vary', 'Origin');
      return done();
    }
    void reply.header('access-control-allow-origin', origin).header('vary', 'Origin').header('access-control-expose-headers', EXPOSED_HEADERS);
    if (request.method === 'OPTIONS' && request.headers['access-control-request-method']) {
      void reply
        .header('access-control-allow-methods', ALLOWED_METHODS)
        .header('access-control-allow-headers', ALLOWED_HEADERS)
        .header('access-control-max-age', '600')
        .code(204)
        .send();
      return;
    }
    done();
  });
}
