// Makes sure a ClamAV daemon is reachable for the scanner tests, in this order: TEST_CLAMD_ADDRESS
// as given; a throwaway `clamd` on a free loopback port, with one local test signature (the
// EICAR test string) and no downloaded database, so it starts in well under a second and never
// touches the network. If `clamd` is missing and this runs as root on Debian/Ubuntu, the
// `clamav-daemon` package is installed first (once, ~20 s). When none of this works nothing is
// exported and only the tests that need clamd fail, saying so.
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { aptInstall, freePort, hasCommand, stopChild, tcpPing } from './shared.mjs';

/** The EICAR anti-virus test file: harmless text that every scanner reports. */
export const EICAR = 'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*';

const ping = (host, port, timeoutMs = 1000) => tcpPing(host, port, { send: 'zPING\0', expect: 'PONG', timeoutMs });

export async function start({ dir, log }) {
  if (process.env.TEST_CLAMD_ADDRESS) {
    const [host, port] = process.env.TEST_CLAMD_ADDRESS.split(':');
    if (!(await ping(host, Number(port)))) throw new Error('TEST_CLAMD_ADDRESS is set but clamd does not answer there');
    return { env: { TEST_CLAMD_ADDRESS: process.env.TEST_CLAMD_ADDRESS }, stop: async () => {} };
  }
  if (!hasCommand('clamd') && !aptInstall((m) => log(`clamd: ${m}`), 'clamav-daemon', 'clamd')) {
    log('clamd: no clamd binary and it could not be installed; the scanner tests will fail (install clamav-daemon or set TEST_CLAMD_ADDRESS)');
    return { env: {}, stop: async () => {} };
  }
  const port = await freePort();
  const workDir = join(dir, 'clamd');
  const dbDir = join(workDir, 'db');
  mkdirSync(dbDir, { recursive: true });
  writeFileSync(join(dbDir, 'jan-test.ndb'), `Jan-Test-Eicar:0:*:${Buffer.from(EICAR).toString('hex')}\n`);
  const config = join(workDir, 'clamd.conf');
  writeFileSync(
    config,
    [
      'Foreground yes',
      `TCPSocket ${port}`,
      'TCPAddr 127.0.0.1',
      `DatabaseDirectory ${dbDir}`,
      `LogFile ${join(workDir, 'clamd.log')}`,
      'StreamMaxLength 32M',
      `TemporaryDirectory ${workDir}`,
      '',
    ].join('\n'),
  );
  const child = spawn('clamd', ['--config-file', config], { stdio: 'ignore' });
  for (let i = 0; i < 150 && child.exitCode === null && !(await ping('127.0.0.1', port, 200)); i++) await new Promise((r) => setTimeout(r, 100));
  if (!(await ping('127.0.0.1', port))) {
    child.kill('SIGTERM');
    throw new Error(`clamd did not start (see ${join(workDir, 'clamd.log')})`);
  }
  log(`clamd: a throwaway clamd on 127.0.0.1:${port}`);
  return {
    env: { TEST_CLAMD_ADDRESS: `127.0.0.1:${port}` },
    stop: () => stopChild(child),
  };
}
