// Checks a built @jan/media-client the way consumers meet it: installed under node_modules,
// loaded with require() and with import(), and type-checked by TypeScript with
// moduleResolution node16 from a CommonJS file and from an ES module file, and by Jest transforming
// TypeScript to CommonJS with @swc/jest (the repository's own Jest setup).
// Usage: node scripts/check-package.mjs [packageDir]   (default: this package, after `build`)
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const packageDir = resolve(process.argv[2] ?? root);
const requireHere = createRequire(import.meta.url);
const tsc = requireHere.resolve('typescript/bin/tsc');
const typesNode = dirname(requireHere.resolve('@types/node/package.json'));
const jestBin = requireHere.resolve('jest/bin/jest');
const swcJest = requireHere.resolve('@swc/jest');

const consumer = mkdtempSync(join(tmpdir(), 'media-client-consumer-'));
try {
  mkdirSync(join(consumer, 'node_modules', '@jan'), { recursive: true });
  mkdirSync(join(consumer, 'node_modules', '@types'), { recursive: true });
  symlinkSync(packageDir, join(consumer, 'node_modules', '@jan', 'media-client'), 'dir');
  symlinkSync(typesNode, join(consumer, 'node_modules', '@types', 'node'), 'dir');
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));

  const probe = `
    const client = new m.MediaClient({ baseURL: 'http://127.0.0.1:8285', env: {} });
    const names = ['MediaClient', 'APIError', 'NotFoundError', 'APIConnectionTimeoutError',
      'createMediaMigration', 'validateCutover', 'findCutoverViolations', 'CutoverViolationError', 'StorageUploadError'];
    const missing = names.filter((n) => typeof m[n] !== 'function');
    if (missing.length) throw new Error('missing exports: ' + missing.join(', '));
    if (!(new m.NotFoundError(404, { error: 'x' }, new Headers()) instanceof m.APIError)) throw new Error('error tree broken');
    if (typeof client.media.uploadDirect !== 'function') throw new Error('client incomplete');
  `;
  const cjs = `const m = require('@jan/media-client');${probe}
    if (!require.resolve('@jan/media-client').includes('/dist/cjs/')) throw new Error('require did not pick dist/cjs');
    console.log('require ok');`;
  const esm = `const m = await import('@jan/media-client');${probe}
    if (!import.meta.resolve('@jan/media-client').includes('/dist/esm/')) throw new Error('import did not pick dist/esm');
    console.log('import ok');`;
  writeFileSync(join(consumer, 'probe.cjs'), cjs);
  writeFileSync(join(consumer, 'probe.mjs'), esm);
  // Importing the ESM build from CommonJS via import() must work too (dynamic import in CJS apps).
  writeFileSync(join(consumer, 'probe-dynamic.cjs'), `(async () => { const m = await import('@jan/media-client');${probe} console.log('dynamic import ok'); })().catch((e) => { console.error(e); process.exit(1); });`);
  for (const file of ['probe.cjs', 'probe.mjs', 'probe-dynamic.cjs']) {
    process.stdout.write(execFileSync(process.execPath, [file], { cwd: consumer, encoding: 'utf8' }));
  }

  const typed = `
    const client = new MediaClient({ baseURL: 'http://127.0.0.1:8285', serviceKey: 'k' });
    async function use(): Promise<void> {
      const object: MediaObject = await client.media.ingestDataUrl('data:image/png;base64,AA', {}, { userId: 'u' });
      const id: string = object.id;
      const usage = await client.usage.retrieve();
      const n: number = usage.objects;
      try { await client.media.metadata(id); } catch (e) { if (e instanceof NotFoundError) { const c: string | undefined = e.code; void c; } }
      const migration = createMediaMigration({ enabled: false });
      await migration.resolveForProvider({ messages: [] }, { provider: 'bedrock' });
      void n;
    }
    void use;
  `;
  writeFileSync(
    join(consumer, 'consumer.cts'),
    `import { MediaClient, NotFoundError, createMediaMigration, type MediaObject } from '@jan/media-client';\n${typed}`,
  );
  writeFileSync(
    join(consumer, 'consumer.mts'),
    `import { MediaClient, NotFoundError, createMediaMigration, type MediaObject } from '@jan/media-client';\n${typed}`,
  );
  writeFileSync(
    join(consumer, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'node16',
        moduleResolution: 'node16',
        target: 'ES2022',
        strict: true,
        noEmit: true,
        skipLibCheck: false,
        types: ['node'],
      },
      files: ['consumer.cts', 'consumer.mts'],
    }),
  );
  execFileSync(process.execPath, [tsc, '-p', join(consumer, 'tsconfig.json')], { cwd: consumer, stdio: 'inherit' });
  console.log('types ok (node16: CommonJS and ESM consumers)');

  writeFileSync(
    join(consumer, 'jest.config.js'),
    `module.exports = { rootDir: __dirname, testEnvironment: 'node', testMatch: ['<rootDir>/*.spec.ts'],
      transform: { '^.+\\.(t|j|mj)s$': [${JSON.stringify(swcJest)}, { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } }] },
      transformIgnorePatterns: [], moduleFileExtensions: ['ts', 'js', 'mjs', 'json'] };`,
  );
  writeFileSync(
    join(consumer, 'resolve.spec.ts'),
    `import { MediaClient, APIError, createMediaMigration } from '@jan/media-client';
     it('resolves the CommonJS build', () => {
       expect(require.resolve('@jan/media-client')).toContain('/dist/cjs/');
       expect(new MediaClient({ baseURL: 'http://127.0.0.1:8285', env: {} }).baseURL).toBe('http://127.0.0.1:8285');
       expect(typeof APIError).toBe('function');
       expect(createMediaMigration({ enabled: false }).enabled).toBe(false);
     });`,
  );
  execFileSync(process.execPath, [jestBin, '--config', join(consumer, 'jest.config.js'), '--ci', '--silent'], {
    cwd: consumer,
    stdio: 'inherit',
  });
  console.log('jest (swc, CommonJS) ok');
} finally {
  rmSync(consumer, { recursive: true, force: true });
}
