/**
 * Set when a shutdown begins (bootstrap's `close`). From then on `/readyz` answers 503
 * `shutting_down` and every answer closes its connection, while the server still accepts new
 * connections for `MEDIA_SHUTDOWN_DELAY` (the time the load balancer takes to stop sending any)
 * before it stops listening and drains.
 */
export class Draining {
  active = false;
}
