#!/usr/bin/env node
// A second, dependency-free guard for the architecture rules (dependency-cruiser is the first):
// libs/domain imports nothing but @jan/mediaid and node built-ins, and only config/ reads
// process.env in the media API.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { builtinModules } from 'node:module';

const root = new URL('..', import.meta.url).pathname;
const problems = [];

function* files(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (name === 'node_modules' || name === 'dist') continue;
    if (statSync(path).isDirectory()) yield* files(path);
    else if (/\.ts$/.test(name)) yield path;
  }
}

const IMPORT = /(?:import|export)\s+(?:type\s+)?(?:[^'"]*?\sfrom\s+)?['"]([^'"]+)['"]|require\(\s*['"]([^'"]+)['"]\s*\)|import\(\s*['"]([^'"]+)['"]\s*\)/g;
const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);

for (const file of files(join(root, 'libs/domain/src'))) {
  const source = readFileSync(file, 'utf8');
  for (const match of source.matchAll(IMPORT)) {
    const target = match[1] ?? match[2] ?? match[3];
    if (target.startsWith('.') || builtins.has(target) || target === '@jan/mediaid') continue;
    if (file.endsWith('.spec.ts') && target === 'fast-check') continue;
    problems.push(`${relative(root, file)} imports ${target}: libs/domain may only use @jan/mediaid and node built-ins`);
  }
}

for (const app of ['apps/media-api/src']) {
  for (const file of files(join(root, app))) {
    if (file.includes('/config/')) continue;
    if (/process\.env/.test(readFileSync(file, 'utf8'))) problems.push(`${relative(root, file)} reads process.env outside config/`);
  }
}

if (problems.length) {
  process.stderr.write(`architecture check failed:\n  - ${problems.join('\n  - ')}\n`);
  process.exit(1);
}
process.stdout.write('architecture check passed\n');
