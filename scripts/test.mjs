#!/usr/bin/env node
// `pnpm test`: starts what the integration and e2e tiers need (PostgreSQL, the S3 and GCS
// stand-ins, Redis, clamd; strace as a tool), runs every Jest project with their addresses in the environment, stops them again.
// Extra arguments go to Jest, e.g. `pnpm test -- --selectProjects unit`.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, '.test-services');
const log = (message) => process.stderr.write(`[test-services] ${message}\n`);
const services = ['postgres', 's3', 'gcs', 'redis', 'clamd', 'strace'];

const started = [];
let code = 1;
try {
  const env = { ...process.env };
  for (const name of services) {
    const module = join(root, 'scripts', 'test-services', `${name}.mjs`);
    if (!existsSync(module)) continue;
    const t0 = Date.now();
    const service = await (await import(module)).start({ dir, log });
    started.push(service);
    Object.assign(env, service.env);
    log(`${name} ready in ${Date.now() - t0} ms`);
  }
  const args = process.argv.slice(2).filter((a) => a !== '--');
  const jest = join(root, 'node_modules', 'jest', 'bin', 'jest.js');
  code = await new Promise((resolve) => {
    const child = spawn(process.execPath, [jest, '--ci', ...args], { cwd: root, env, stdio: 'inherit' });
    child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
  });
} catch (error) {
  log(`failed: ${error instanceof Error ? error.stack : error}`);
  code = 1;
} finally {
  for (const service of started.reverse()) await service.stop().catch((e) => log(`stop failed: ${e}`));
}
process.exit(code);
