// GCS stand-in for the integration tests: the firebase-tools Cloud Storage emulator, run in a
// child process (scripts/test-services/gcs-emulator.cjs) on 127.0.0.1 and a free port.
// firebase-tools is installed on first use into .test-services/ (gitignored), pinned, without
// optional deps (re2 would compile for minutes). The emulator does not verify signatures, POST
// policies, hashes or CMEK, and has no XML-API PUT: see libs/storage-gcs/README.md.
import { spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');

/** These are firebase-tools internals: bump deliberately and re-run the GCS tests. */
export const FIREBASE_TOOLS_VERSION = '15.34.2';
export const GCS_TEST_BUCKET = 'jan-media-test';
const prefix = path.join(repo, '.test-services', 'firebase-tools');
const packageDir = path.join(prefix, 'node_modules', 'firebase-tools');

export function ensureFirebaseTools(log = (message) => process.stderr.write(`[gcs] ${message}\n`)) {
  const manifest = path.join(packageDir, 'package.json');
  if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).version === FIREBASE_TOOLS_VERSION) return packageDir;
  log(`installing firebase-tools@${FIREBASE_TOOLS_VERSION} into ${prefix} (once, ~1 min)`);
  const result = spawnSync(
    'npm',
    ['install', '--prefix', prefix, '--omit=optional', '--no-audit', '--no-fund', '--loglevel=error', `firebase-tools@${FIREBASE_TOOLS_VERSION}`],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  if (result.status !== 0) throw new Error(`npm install firebase-tools@${FIREBASE_TOOLS_VERSION} failed (${result.status ?? result.signal})`);
  return packageDir;
}

/** @param {{ dir: string, log?: (message: string) => void }} options */
export async function start({ dir, log }) {
  const fbDir = ensureFirebaseTools(log);
  const dataDir = path.join(dir, 'gcs-emulator');
  await mkdir(dataDir, { recursive: true });
  const child = spawn(process.execPath, [path.join(here, 'gcs-emulator.cjs'), fbDir, dataDir], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NO_UPDATE_NOTIFIER: '1', TMPDIR: dataDir },
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error('GCS emulator did not start within 30 s')), 30_000);
    const lines = createInterface({ input: child.stdout });
    function fail(error) {
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${error.message}\n${stderr}`));
    }
    lines.on('line', (line) => {
      try {
        const message = JSON.parse(line);
        if (message.ready) {
          clearTimeout(timer);
          resolve(message.port);
        }
      } catch {
        // emulator log output; ignore
      }
    });
    child.once('exit', (code, signal) => fail(new Error(`GCS emulator exited early (${code ?? signal})`)));
  });
  child.stdout.resume();

  // V4 signing is local RSA-SHA256: a throwaway key and a made-up service account suffice.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    env: {
      TEST_GCS_ENDPOINT: `http://127.0.0.1:${port}`,
      TEST_GCS_BUCKET: GCS_TEST_BUCKET,
      TEST_GCS_PROJECT_ID: 'jan-media-test',
      TEST_GCS_CLIENT_EMAIL: 'media-api-test@jan-media-test.iam.gserviceaccount.com',
      TEST_GCS_PRIVATE_KEY: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    },
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
