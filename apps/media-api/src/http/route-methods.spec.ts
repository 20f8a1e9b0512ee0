import { RouteMethods } from './route-methods';

describe('RouteMethods', () => {
  const routes = new RouteMethods((url) => url.startsWith('/v1/admin'));
  routes.add('/v1/media/:id', ['GET', 'HEAD']);
  routes.add('/v1/media/:id', 'DELETE');
  routes.add('/v1/media/:id/complete', 'POST');
  routes.add('/v1/media/resolve', 'POST');
  routes.add('/healthz', ['GET', 'HEAD']);
  routes.add('/v1/admin/usage', 'GET');
  routes.add('*', 'OPTIONS');
  routes.add('/docs/', 'GET');

  it('lists the methods of every route whose pattern matches the path', () => {
    expect(routes.allowedAt('/v1/media/jan_01hqr8v9k2x3f4g5h6j7k8m9n0')).toEqual(['DELETE', 'GET', 'HEAD']);
    expect(routes.allowedAt('/v1/media/jan_x/complete')).toEqual(['POST']);
    // A static route and a parameter both match: the answer names both routes' methods.
    expect(routes.allowedAt('/v1/media/resolve')).toEqual(['DELETE', 'GET', 'HEAD', 'POST']);
    expect(routes.allowedAt('/healthz')).toEqual(['GET', 'HEAD']);
    expect(routes.allowedAt('/docs')).toEqual(['GET']);
  });

  it('knows nothing of unknown paths, hidden routes and catch-alls', () => {
    expect(routes.allowedAt('/v1/nothing')).toEqual([]);
    expect(routes.allowedAt('/v1/media/a/b/c')).toEqual([]);
    expect(routes.allowedAt('/v1/admin/usage')).toEqual([]);
    expect(routes.allowedAt('/healthz.json')).toEqual([]);
  });
});
