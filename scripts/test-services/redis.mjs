// Makes sure a Redis is reachable for the rate-limit tests, in this order: TEST_REDIS_URL as
// given; a server already answering on 127.0.0.1:6379; a throwaway `redis-server` (if the binary
// is on PATH, or once installed from Debian's package when running as root) on a free loopback
// port, without persistence. When none of these works nothing is
// exported and only the tests that need Redis fail, saying so (the other tiers still run).
// Idempotent: a server found running is used and left alone.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { aptInstall, freePort, hasCommand, stopChild, tcpPing } from './shared.mjs';

const ping = (host, port, timeoutMs = 1000) => tcpPing(host, port, { send: 'PING\r\n', expect: '+PONG', timeoutMs });

function hostPort(url) {
  const parsed = new URL(url);
  return { host: parsed.hostname, port: Number(parsed.port || 6379) };
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
  if (!hasCommand('redis-server') && !aptInstall((m) => log(`redis: ${m}`), 'redis-server', 'redis-server')) {
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
    stop: () => stopChild(child),
  };
}
