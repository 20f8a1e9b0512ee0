import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

// The TypeScript samples llm-api engineers copy — docs/migration.md and this package's README —
// must compile, strictly, against the SDK's real exports. Each ```ts block becomes the body of a
// function (its imports go to the top of the file), and so do the calls on `mediaMigration` quoted
// in the prose (`mediaMigration.client.usage.retrieve({ userId })`); the identifiers the samples take from
// llm-api's own code (config, logger, the provider, …) are declared with plausible types, config
// values as the strings an environment gives.
const packageRoot = join(__dirname, '..');
const repoRoot = join(packageRoot, '../..');
const tsc = require.resolve('typescript/bin/tsc', { paths: [repoRoot] });
const typeRoots = dirname(dirname(require.resolve('@types/node/package.json', { paths: [repoRoot] })));

const llmApiScope = `
import { MediaClient, APIError, NotFoundError, CutoverViolationError, createMediaMigration, type MediaMigration } from '@jan/media-client';
declare const config: {
  MEDIA_CLIENT_ENABLED: boolean; MEDIA_API_URL: string; MEDIA_API_KEY: string;
  MEDIA_CLIENT_CUTOVER: string | undefined; LLM_SEND_MEDIA_REFS: boolean;
};
declare const logger: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
declare const resolveHistogram: { record(value: number, labels: Record<string, string>): void };
declare const provider: { chat(body: unknown): Promise<unknown> };
declare const messages: { saveMediaRefs(messageId: string, refs: Array<{ path: string; ref: string | null; legacyUrl: string }>): Promise<void> };
declare const route: { provider: string };
declare const reply: { status(code: number): { send(body: unknown): unknown } };
declare const messageId: string;
declare const userId: string;
declare const body: { model: string; messages: unknown[] };
declare const mediaMigration: MediaMigration;
declare const media: MediaClient;
declare const id: string;
declare const urlOrDataUrl: string;
void [MediaClient, APIError, NotFoundError, CutoverViolationError, createMediaMigration];
`;

function tsBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```ts\n([\s\S]*?)^```/gm)].map((match) => match[1]!);
}

function sampleModule(markdown: string): string {
  const imported = new Set(['MediaClient', 'APIError', 'NotFoundError', 'CutoverViolationError', 'createMediaMigration', 'MediaMigration']);
  const imports: string[] = [];
  const functions = tsBlocks(markdown).map((block, index) => {
    const code = block
      .split('\n')
      .filter((line) => {
        const names = /^import \{(.*)\} from '@jan\/media-client';$/.exec(line);
        if (!names) return true;
        const fresh = names[1]!.split(',').map((name) => name.trim()).filter((name) => name && !imported.has(name));
        fresh.forEach((name) => imported.add(name));
        if (fresh.length > 0) imports.push(`import { ${fresh.join(', ')} } from '@jan/media-client';`);
        return false;
      })
      // `export const x` is top-level in the docs; here every sample is a function body.
      .map((line) => line.replace(/^export /, ''))
      .join('\n')
      // The docs elide with `…` (inside strings, comments and as empty statements).
      .replaceAll('…;', '{}')
      .replaceAll('…', '');
    return `export async function sample${index}() {\n${code}\n}`;
  });
  const quotedCalls = [...markdown.matchAll(/`(mediaMigration\.[^`]*\))`/g)].map((match) => `  await ${match[1]};`);
  functions.push(`export async function quotedCalls() {\n${quotedCalls.join('\n')}\n}`);
  return [...imports, llmApiScope, ...functions].join('\n');
}

function typeCheck(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'media-client-doc-samples-'));
  try {
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'preserve',
          moduleResolution: 'bundler',
          target: 'ES2022',
          lib: ['ES2023'],
          strict: true,
          noEmit: true,
          allowImportingTsExtensions: true,
          skipLibCheck: true,
          types: ['node'],
          typeRoots: [typeRoots],
          paths: { '@jan/media-client': [join(packageRoot, 'src/index.ts')] },
        },
        files: Object.keys(files),
      }),
    );
    try {
      execFileSync(process.execPath, [tsc, '-p', join(dir, 'tsconfig.json')], { cwd: dir, encoding: 'utf8', stdio: 'pipe' });
      return '';
    } catch (error) {
      return String((error as { stdout?: string }).stdout ?? error);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('documented TypeScript samples', () => {
  const docs = {
    'migration.ts': join(repoRoot, 'docs/migration.md'),
    'readme.ts': join(packageRoot, 'README.md'),
  };

  it('finds the samples it checks', () => {
    for (const path of Object.values(docs)) expect(tsBlocks(readFileSync(path, 'utf8')).length).toBeGreaterThanOrEqual(2);
  });

  it('type-check against the SDK exports under strict mode', () => {
    const files = Object.fromEntries(Object.entries(docs).map(([name, path]) => [name, sampleModule(readFileSync(path, 'utf8'))]));
    expect(typeCheck(files)).toBe('');
  }, 120_000);
});
