/**
 * How often Node looks for requests past `MEDIA_REQUEST_TIMEOUT` (its `connectionsCheckingInterval`):
 * often enough to hold a short one. A request is ended only at the first check after its timeout,
 * so one may still be arriving for up to this long past it.
 */
export function requestTimeoutCheckMs(timeoutMs: number): number {
  return timeoutMs > 0 ? Math.min(30_000, Math.max(250, Math.floor(timeoutMs / 4))) : 30_000;
}
