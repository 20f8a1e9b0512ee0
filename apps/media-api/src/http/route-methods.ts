import type { FastifyInstance } from 'fastify';

/**
 * The methods each registered path answers, so that a known path asked with another method gets
 * `405 method_not_allowed` and an `Allow` header instead of the 404 of an unknown route. Paths
 * for which `hidden` is true (the admin routes, which do not exist for anyone else) stay out.
 */
export class RouteMethods {
  private readonly routes = new Map<string, { pattern: RegExp; methods: Set<string> }>();

  constructor(private readonly hidden: (url: string) => boolean = () => false) {}

  /** Records every route registered on `fastify` from now on (call it before routes are added). */
  watch(fastify: FastifyInstance): void {
    fastify.addHook('onRoute', (route) => this.add(route.url ?? route.path, route.method));
  }

  add(url: string | undefined, method: string | string[]): void {
    if (!url || url.includes('*') || this.hidden(url)) return;
    let entry = this.routes.get(url);
    if (!entry) this.routes.set(url, (entry = { pattern: patternOf(url), methods: new Set() }));
    for (const one of [method].flat()) entry.methods.add(one.toUpperCase());
  }

  /** The methods some route answers at `path` (no query string), sorted; [] when none has it. */
  allowedAt(path: string): string[] {
    const methods = new Set<string>();
    for (const route of this.routes.values()) {
      if (route.pattern.test(path)) for (const method of route.methods) methods.add(method);
    }
    return [...methods].sort();
  }
}

/** `/v1/media/:id/complete` → `^/v1/media/[^/]+/complete/?$`. */
function patternOf(url: string): RegExp {
  const source = url
    .split('/')
    .map((segment) => (segment.startsWith(':') ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${source.replace(/\/$/, '')}/?$`);
}
