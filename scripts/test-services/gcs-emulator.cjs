// Child process for scripts/test-services/gcs.mjs: runs the firebase-tools Cloud Storage
// emulator in process (no Java, no rules jar, no network), on 127.0.0.1, and prints
// `{"ready":true,"port":N}` on stdout once it accepts connections. Usage:
//   node gcs-emulator.cjs <firebase-tools package dir> <data dir>
// These are firebase-tools internals: the version is pinned in gcs.mjs.
'use strict';
const net = require('node:net');
const path = require('node:path');
const fs = require('node:fs');

const [fbDir, dataDir] = process.argv.slice(2);
if (!fbDir || !dataDir) {
  console.error('usage: gcs-emulator.cjs <firebase-tools dir> <data dir>');
  process.exit(2);
}
const lib = (p) => require(path.resolve(fbDir, 'lib', p));

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function main() {
  const { StorageRulesRuntime } = lib('emulator/storage/rules/runtime');
  // The rules runtime is a Java process fetched at run time. The gcloud (admin) API the
  // adapter speaks never consults rules, so it is stubbed out.
  StorageRulesRuntime.prototype.start = async () => {};
  StorageRulesRuntime.prototype.stop = async () => {};
  const { StorageEmulator } = lib('emulator/storage');
  const { EmulatorRegistry } = lib('emulator/registry');
  const blobs = path.join(dataDir, 'blobs');
  fs.mkdirSync(blobs, { recursive: true });
  StorageEmulator.prototype.getPersistenceTmpDir = () => blobs;

  const port = await freePort();
  const emulator = new StorageEmulator({ projectId: 'jan-media-test', host: '127.0.0.1', port, rules: [], auto_download: false });
  await EmulatorRegistry.start(emulator);
  process.stdout.write(JSON.stringify({ ready: true, port }) + '\n');

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    try {
      await EmulatorRegistry.stop(emulator.getName());
    } finally {
      process.exit(0);
    }
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // The parent closes stdin (or dies): do not outlive it.
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.resume();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
