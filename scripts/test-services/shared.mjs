// Helpers the test services share (not a service itself: scripts/test.mjs starts only the ones it names).
import { spawnSync } from 'node:child_process';
import { createConnection, createServer } from 'node:net';

/** A TCP port free on loopback right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Connects, writes `send`, and is true when the first answer starts with `expect`. */
export function tcpPing(host, port, { send, expect, timeoutMs = 1000 }) {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write(send));
    socket.on('data', (data) => done(data.toString().startsWith(expect)));
  });
}

/** True when `command --version` runs. */
export function hasCommand(command) {
  const found = spawnSync(command, ['--version'], { stdio: 'ignore' });
  return !found.error && found.status === 0;
}

/**
 * Installs a Debian package when this runs as root where apt-get exists (CI, containers), once;
 * true when `command` runs afterwards.
 */
export function aptInstall(log, pkg, command) {
  if (process.getuid?.() !== 0 || !hasCommand('apt-get')) return false;
  log(`installing Debian package ${pkg} (once)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const result = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', pkg], { stdio: 'ignore', env, timeout: 300_000 });
  return result.status === 0 && hasCommand(command);
}

/** SIGTERM to a child we started, resolved once it has exited. */
export async function stopChild(child) {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}
