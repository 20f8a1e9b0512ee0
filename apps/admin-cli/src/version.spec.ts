import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { VERSION } from './version';

it('reports the version of its package.json', () => {
  const pkg = JSON.parse(readFileSync(join(__dirname, '../package.json'), 'utf8')) as { version: string; bin: Record<string, string> };
  expect(VERSION).toBe(pkg.version);
  expect(pkg.bin).toEqual({ jan: 'dist/main.js' });
});
