import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Builds the package with its real build script into a scratch copy (so a concurrent test run
// reading dist/ is never disturbed), then checks it the way consumers meet it.
const packageRoot = join(__dirname, '..');

describe('published package shape', () => {
  let scratch: string;

  beforeAll(() => {
    scratch = mkdtempSync(join(tmpdir(), 'media-client-pkg-'));
    copyFileSync(join(packageRoot, 'package.json'), join(scratch, 'package.json'));
    execFileSync(process.execPath, [join(packageRoot, 'scripts/build.mjs'), join(scratch, 'dist')], {
      cwd: packageRoot,
      stdio: 'pipe',
    });
  }, 120_000);

  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('loads with require() and import(), type-checks under node16 and resolves in Jest', () => {
    const output = execFileSync(process.execPath, [join(packageRoot, 'scripts/check-package.mjs'), scratch], {
      cwd: packageRoot,
      encoding: 'utf8',
      stdio: 'pipe',
    });
    expect(output).toContain('require ok');
    expect(output).toContain('import ok');
    expect(output).toContain('dynamic import ok');
    expect(output).toContain('types ok');
    expect(output).toContain('jest (swc, CommonJS) ok');
  }, 120_000);
});
