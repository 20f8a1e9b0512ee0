// Builds the package twice from one source: ESM into dist/esm and CommonJS into dist/cjs, each
// with its own declarations and a package.json that pins the module format for Node.
// Usage: node scripts/build.mjs [outDir]   (outDir defaults to ./dist; tests build elsewhere)
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = resolve(root, process.argv[2] ?? 'dist');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

const targets = [
  { dir: 'esm', module: 'esnext', type: 'module' },
  { dir: 'cjs', module: 'commonjs', type: 'commonjs' },
];

rmSync(outDir, { recursive: true, force: true });
for (const target of targets) {
  const dir = resolve(outDir, target.dir);
  const result = spawnSync(
    process.execPath,
    [tsc, '-p', resolve(root, 'tsconfig.build.json'), '--outDir', dir, '--module', target.module],
    { stdio: 'inherit' },
  );
  if (result.status !== 0) process.exit(result.status ?? 1);
  mkdirSync(dir, { recursive: true });
  writeFileSync(resolve(dir, 'package.json'), JSON.stringify({ type: target.type }) + '\n');
}
