// The last step of `pnpm build` for the media API: bundles the compiled app (dist/main.js and
// everything it imports) into one file, dist/bundle/app.js, which `node dist/start.js` runs.
//
// Why: at start-up Node resolved, read and compiled ~1,500 CommonJS files and Nest's ES modules
// one by one (TypeORM ~295, rxjs ~226, class-validator with validator and libphonenumber ~320),
// and that was three quarters of the time to the first 200 on /readyz. One file needs no module
// lookups, and the V8 code cache made here for it lets dist/start.js skip most of the compiling
// too (docs/performance.md, "Eighth pass").
//
// Left outside the bundle, loaded from node_modules as before:
// - packages with native or WebAssembly parts (sharp; PGlite runs in its own worker file),
// - packages loaded only for some configurations, so they stay lazy (the S3 and GCS adapters and
//   their SDKs, OpenTelemetry's SDK, ioredis),
// - Nest's optional packages this app does not install (Nest tries them and carries on),
// - @jan/domain and @jan/mediaid, which the S3 and GCS adapters load too: one copy of them, so a
//   DomainError thrown inside an adapter is still `instanceof DomainError` to the app (with two
//   copies, every storage refusal became a 500).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import redundantNames from './redundant-names.cjs';

const app = join(dirname(fileURLToPath(import.meta.url)), '..');

const external = [
  '@jan/domain',
  '@jan/mediaid',
  'sharp',
  '@electric-sql/*',
  '@jan/storage-s3',
  '@jan/storage-gcs',
  '@aws-sdk/*',
  '@google-cloud/*',
  '@opentelemetry/sdk-node',
  '@opentelemetry/exporter-trace-otlp-http',
  'ioredis',
  '@nestjs/microservices',
  '@nestjs/websockets',
  '@nestjs/platform-express',
  '@fastify/view',
  'pg-native',
];

/**
 * A workspace package that an external one loads must be external too: inside the bundle it would
 * be a second copy, and its classes (DomainError) would fail `instanceof` across the two.
 */
async function checkNoSharedWorkspacePackage() {
  const libs = join(app, '../../libs');
  // Directories without a package.json (a branch switch leaves dist/ behind) are not packages.
  const entries = (await readdir(libs)).filter((dir) => existsSync(join(libs, dir, 'package.json')));
  const manifests = await Promise.all(entries.map(async (dir) => JSON.parse(await readFile(join(libs, dir, 'package.json'), 'utf8'))));
  const workspace = new Map(manifests.map((manifest) => [manifest.name, manifest]));
  for (const name of external.filter((e) => workspace.has(e))) {
    for (const dependency of Object.keys(workspace.get(name).dependencies ?? {})) {
      if (workspace.has(dependency) && !external.includes(dependency)) {
        throw new Error(`${name} is left outside the bundle and loads ${dependency}, which would be bundled: add ${dependency} to external`);
      }
    }
  }
}
await checkNoSharedWorkspacePackage();

/**
 * The embedded database's worker runs from its own file next to the persistence package's
 * compiled code, which its `__dirname` no longer names once that code is inside the bundle.
 */
const persistenceWorkerDir = {
  name: 'persistence-worker-dir',
  setup(builder) {
    builder.onLoad({ filter: /[\\/]persistence[\\/]dist[\\/]embedded[\\/]embedded-server\.js$/ }, async (args) => {
      const source = await readFile(args.path, 'utf8');
      if (!source.includes('__dirname')) throw new Error(`${args.path} no longer uses __dirname: update scripts/bundle.mjs`);
      const located = 'require("node:path").join(require("node:path").dirname(require.resolve("@jan/persistence")), "embedded")';
      return { contents: source.replaceAll('__dirname', located), loader: 'js' };
    });
  },
};

/** Must match what dist/start.js expects (src/start.ts). */
const WRAPPER_OPEN = '(function (exports, require, module, __filename, __dirname) {';
const outfile = join(app, 'dist/bundle/app.js');
const result = await build({
  entryPoints: [join(app, 'dist/main.js')],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20.19',
  format: 'cjs',
  external,
  // Nest resolves providers by class and @nestjs/swagger names schemas after classes.
  keepNames: true,
  // `import()` of an external becomes a require: the bundle then runs as a plain script, which
  // dist/start.js can compile with a code cache.
  supported: { 'dynamic-import': false },
  // Nest's ES modules build `createRequire(import.meta.url)`; inside the bundle that is the bundle.
  define: { 'import.meta.url': '__bundleFileUrl' },
  // The file is CommonJS's module wrapper around the bundle, one function expression: dist/start.js
  // compiles it as it is, with no 9 MB concatenation, and calls it.
  // esbuild's own "use strict" comes after the banner, where it is no longer a directive.
  banner: { js: `${WRAPPER_OPEN}\n'use strict';\nconst __bundleFileUrl = require('node:url').pathToFileURL(__filename).href;` },
  footer: { js: '})' },
  plugins: [persistenceWorkerDir],
  logLevel: 'warning',
  // Nest and TypeORM guard their optional requires themselves.
  logOverride: { 'require-resolve-not-external': 'silent', 'unsupported-require-call': 'silent', 'unsupported-dynamic-import': 'silent' },
  write: false,
});
await mkdir(dirname(outfile), { recursive: true });
// keepNames' wrappers that JavaScript's own naming makes redundant cost a defineProperty per call
// of the function that creates them (scripts/redundant-names.cjs).
const { source: named } = redundantNames.dropRedundantNames(result.outputFiles[0].text);
await writeFile(outfile, asciiOnly(named));
// The code cache is keyed by the bundle's content: V8 itself only compares the source's length.
const sha256 = createHash('sha256').update(await readFile(outfile)).digest('hex');
await writeFile(join(app, 'dist/bundle/manifest.json'), `${JSON.stringify({ sha256 }, null, 2)}\n`);
// V8's code cache for it, made here so the running service never writes one (src/start.ts): every
// module loaded, the app not started. A start compiles then only what Nest's boot runs.
// Without NODE_OPTIONS: V8 rejects a cache made under other flags, and the service's own flags are
// the ones src/v8-flags.ts sets (a heap flag of the build's would make every start reject it).
const { NODE_OPTIONS: _buildFlags, ...buildEnv } = process.env;
execFileSync(process.execPath, [join(app, 'dist/start.js')], { env: { ...buildEnv, JAN_MEDIA_CODE_CACHE_PRIME: '1' }, stdio: 'inherit' });

/**
 * One non-ASCII character makes V8 hold the whole 9 MB source as UTF-16, twice the memory (idle
 * RSS went from ~135 to ~175 MB). esbuild escapes strings but leaves regular expression literals
 * (validator's per-locale alphabets) and comments as they are, so every non-ASCII UTF-16 unit
 * becomes `\uXXXX`: the same character in a regex, string or identifier, harmless in a comment.
 * After a backslash the escape would change meaning, so the build stops there instead.
 */
function asciiOnly(text) {
  return text.replace(/[^\x00-\x7f]/g, (char, offset) => {
    if (text[offset - 1] === '\\') throw new Error(`non-ASCII character after a backslash at offset ${offset}: escape it by hand`);
    return `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}
