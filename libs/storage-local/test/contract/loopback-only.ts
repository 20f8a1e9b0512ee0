import net from 'node:net';

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+|localhost)$/i;

/**
 * Refuses, in this process, every TCP connection to an address that is not loopback, so a
 * misconfigured client library (a token fetch, a metadata-server probe, a real endpoint) fails
 * the test instead of sending traffic off the machine. Returns the function that lifts it, which
 * also closes the connections made meanwhile that are still open: the SDKs' keep-alive pools.
 * Left open, they kept the test process alive after the last test until the stand-ins timed them
 * out (Jest: "did not exit one second after the test run has completed").
 */
export function allowLoopbackOnly(): () => void {
  const original = net.Socket.prototype.connect;
  const refused: string[] = [];
  const opened = new Set<net.Socket>();
  net.Socket.prototype.connect = function guardedConnect(this: net.Socket, ...args: unknown[]) {
    const first = args[0] as { host?: string; path?: string } | number | string;
    const host = typeof first === 'object' && first !== null ? first.host : typeof args[1] === 'string' ? args[1] : undefined;
    const isPipe = typeof first === 'object' && first !== null && typeof first.path === 'string';
    if (!isPipe && host !== undefined && !LOOPBACK.test(host)) {
      refused.push(host);
      throw new Error(`test network guard: refusing a connection to non-loopback host ${host}`);
    }
    if (!opened.has(this)) {
      opened.add(this);
      this.once('close', () => opened.delete(this));
    }
    return (original as (...a: unknown[]) => net.Socket).apply(this, args);
  } as typeof net.Socket.prototype.connect;
  return () => {
    net.Socket.prototype.connect = original;
    for (const socket of opened) socket.destroy();
    opened.clear();
    if (refused.length) throw new Error(`code under test tried to reach non-loopback hosts: ${[...new Set(refused)].join(', ')}`);
  };
}
