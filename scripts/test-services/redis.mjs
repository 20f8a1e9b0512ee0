// Makes sure a Redis is reachable for the rate-limit tests, in this order: TEST_REDIS_URL as
// given; a server already answering on 127.0.0.1:6379; a throwaway `redis-server` (if the binary
// is on PATH, or once installed from Debian's package when running as root) on a free loopback
// port, without persistence. When none of these works nothing is
// exported and only the tests that need Redis fail, saying so (the other tiers still run).
// Idempotent: a server found running is used and left alone.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { join } from 'node:path';

function ping(host, port, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

function freePort() {
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

function hostPort(url) {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: Number(parsed.port || 6379) };
}

function hasRedisServer() {
  const found = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
  return !found.error && found.status === 0;
}

/** Debian/Ubuntu as root (CI, containers): install the server package once. */
function installRedisServer(log) {
  if (process.getuid?.() !== 0 || spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status !== 0) return false;
  log('redis: installing Debian package redis-server (once)');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const result = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'redis-server'], { stdio: 'ignore', env, timeout: 300_000 });
  return result.status === 0 && hasRedisServer();
}

export async function start({ dir, log }) {
  if (process.env.TEST_REDIS_URL) {
    const { host, port } = hostPort(process.env.TEST_REDIS_URL);
    if (!(await ping(host, port))) throw new Error('TEST_REDIS_URL is set but Redis does not answer there');
    return { env: { TEST_REDIS_URL: process.env.TEST_REDIS_URL }, stop: async () => {} };
  }
  if (await ping('127.0.0.1', 6379)) {
    log('redis: using the server on 127.0.0.1:6379');
    return { env: { TEST_REDIS_URL: 'redis://127.0.0.1:6379' }, stop: async () => {} };
  }
  if (!hasRedisServer() && !installRedisServer(log)) {
    log('redis: none on 127.0.0.1:6379 and no redis-server binary; tests that need Redis will fail (install redis-server or set TEST_REDIS_URL)');
    return { env: {}, stop: async () => {} };
  }
  const port = await freePort();
  const workDir = join(dir, 'redis');
  mkdirSync(workDir, { recursive: true });
  log(`redis: starting a throwaway redis-server on 127.0.0.1:${port}`);
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', workDir], {
    stdio: 'ignore',
  });
  for (let i = 0; i < 50 && !(await ping('127.0.0.1', port, 200)); i++) await new Promise((r) => setTimeout(r, 100));
  if (!(await ping('127.0.0.1', port))) {
    child.kill('SIGTERM');
    throw new Error('redis-server did not start');
  }
  return {
    env: { TEST_REDIS_URL: `redis://127.0.0.1:${port}` },
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
