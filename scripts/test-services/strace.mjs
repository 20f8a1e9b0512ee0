// Makes sure `strace` is on the PATH for the test that watches the local backend's fsync calls
// (libs/storage-local/test/integration/durable-writes.test.ts). It is a tool, not a server:
// nothing is started. If it is missing and this runs as root on Debian/Ubuntu, the `strace`
// package is installed first (once, a few seconds). When that fails, only that test fails, saying so.
import { aptInstall, hasCommand } from './shared.mjs';

export async function start({ log }) {
  if (!hasCommand('strace') && !aptInstall((m) => log(`strace: ${m}`), 'strace', 'strace')) {
    log('strace: not installed and could not be installed; the durable-writes test will fail (install strace)');
  }
  return { env: {}, stop: async () => {} };
}
