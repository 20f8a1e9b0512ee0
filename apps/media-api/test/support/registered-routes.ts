import type { FastifyInstance } from 'fastify';

/**
 * Every `METHOD path` the Fastify router of a running app answers, read from the router itself
 * (`printRoutes`), with `:param` written as OpenAPI's `{param}`. Fastify's automatic HEAD routes
 * (one per GET) are there too: they answer like any other route.
 */
export function registeredRoutes(fastify: FastifyInstance): string[] {
  const routes = new Set<string>();
  const prefixes: string[] = [];
  for (const line of fastify.printRoutes({ commonPrefix: false }).split('\n')) {
    const match = /^((?:│ {3}| {4})*)(?:├── |└── )(.+?)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!match) continue;
    const depth = match[1]!.length / 4;
    prefixes.length = depth;
    const path = (prefixes.join('') + match[2]!);
    prefixes.push(match[2]!);
    for (const method of (match[3] ?? '').split(',').map((m) => m.trim()).filter(Boolean)) {
      routes.add(`${method} ${path.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}')}`);
    }
  }
  return [...routes].sort();
}
