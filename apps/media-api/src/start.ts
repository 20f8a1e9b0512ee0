/**
 * The production entry point (`pnpm start`, the image's command): runs the one-file bundle of the
 * app that the build makes (dist/bundle/app.js, see scripts/bundle.mjs) with V8's code cache.
 *
 * Start-up time was mostly module loading: resolving, reading and compiling ~1,500 files. The
 * bundle removes the lookups; the code cache removes most of the compiling. The build makes the
 * cache (`JAN_MEDIA_CODE_CACHE_PRIME=1 node dist/start.js` loads every module without starting
 * the app and writes what V8 compiled to `bundle/.cache/`); the running service only reads it, so
 * it never writes code that a later start would trust. A cache made by another Node version or for
 * another bundle is not found or not accepted, and the bundle is compiled as it runs.
 * `NODE_DISABLE_COMPILE_CACHE=1` (Node's own switch for its compile cache) skips it.
 *
 * A build without the bundle (plain `tsc`) runs dist/main.js instead.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { join } from 'node:path';
import { Script } from 'node:vm';
import { processEnv } from './config/env';
import { applyV8Flags } from './v8-flags';

function run(): void {
  const bundle = join(__dirname, 'bundle', 'app.js');
  if (!existsSync(bundle)) {
    require('./main');
    return;
  }
  // Before compiling: V8 accepts a code cache only under the flags it was made with.
  applyV8Flags();
  // One function expression, CommonJS's module wrapper included (scripts/bundle.mjs), and ASCII
  // only, so V8 keeps it as a one-byte string.
  const source = readFileSync(bundle, 'latin1');
  // Build-time only (scripts/bundle.mjs): load every module, write the cache, exit.
  const priming = processEnv().JAN_MEDIA_CODE_CACHE_PRIME === '1';
  const cacheFile = codeCacheFile(bundle, { evenIfDisabled: priming });
  const cached = cacheFile && !priming ? readIfPresent(cacheFile) : undefined;
  const script = new Script(source, { filename: bundle, cachedData: cached });
  const bundleModule = new Module(bundle, module);
  bundleModule.filename = bundle;
  const bundleRequire = createRequire(bundle);
  const main = script.runInThisContext() as (...args: unknown[]) => void;
  main.call(bundleModule.exports, bundleModule.exports, bundleRequire, bundleModule, bundle, join(__dirname, 'bundle'));
  if (priming) {
    // Every module is loaded (and main.ts did not start the app): what they compiled is cached.
    if (!cacheFile) throw new Error(`JAN_MEDIA_CODE_CACHE_PRIME: ${bundle} has no manifest.json`);
    writeCodeCache(script, cacheFile);
  } else if (cacheFile && (!cached || script.cachedDataRejected)) {
    // Nothing writes it at run time, so say once why this start compiles everything.
    process.emitWarning(
      cached
        ? 'V8 rejected the code cache of the bundle: node runs with other V8 flags (NODE_OPTIONS, --max-old-space-size…) than the build that made it'
        : `no code cache for this bundle and Node ${process.version}: rebuild with the Node version that runs it`,
      { code: 'JAN_MEDIA_CODE_CACHE' },
    );
  }
}

/** `<bundle dir>/.cache/<bundle sha256>-<node version>-<arch>.v8`, or none when turned off. */
function codeCacheFile(bundle: string, options: { evenIfDisabled: boolean }): string | undefined {
  if (!options.evenIfDisabled && /^(1|true)$/i.test(processEnv().NODE_DISABLE_COMPILE_CACHE ?? '')) return undefined;
  const manifest = readIfPresent(join(bundle, '..', 'manifest.json'));
  const sha256 = manifest ? (JSON.parse(manifest.toString('utf8')) as { sha256?: string }).sha256 : undefined;
  const version = createHash('sha256').update(`${sha256}|${process.version}|${process.arch}`).digest('hex').slice(0, 32);
  return sha256 ? join(bundle, '..', '.cache', `${version}.v8`) : undefined;
}

function readIfPresent(file: string): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch {
    return undefined;
  }
}

/** Written under a temporary name and renamed, so a start meanwhile never reads half a file. */
function writeCodeCache(script: Script, file: string): void {
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(temporary, script.createCachedData());
    renameSync(temporary, file);
  } finally {
    rmSync(temporary, { force: true });
  }
  // Caches of earlier builds or Node versions are never read again.
  for (const name of readdirSync(join(file, '..'))) {
    if (name.endsWith('.v8') && join(file, '..', name) !== file) rmSync(join(file, '..', name), { force: true });
  }
}

run();
