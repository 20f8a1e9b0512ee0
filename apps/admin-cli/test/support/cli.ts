import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

export const CLI_MAIN = resolve(__dirname, '../../dist/main.js');
export const REPO_ROOT = resolve(__dirname, '../../../..');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command with a clean environment (only PATH and HOME from ours, plus `env`), stdin
 * closed and no TTY: what a script or CI job sees.
 */
export function runProcess(command: string, args: readonly string[], env: Record<string, string>, cwd = REPO_ROOT): Promise<CliResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(command, args, {
      cwd,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolveRun({ code, stdout, stderr }));
  });
}

/** `node apps/admin-cli/dist/main.js …args`: the built `jan` binary. */
export function jan(args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
  if (!existsSync(CLI_MAIN)) throw new Error(`${CLI_MAIN} is missing: build first (pnpm turbo run build --filter=@jan/admin-cli...)`);
  return runProcess(process.execPath, [CLI_MAIN, ...args], env);
}

/**
 * Runs `jan` on a real pseudo-terminal through script(1) (util-linux), answering the first
 * `[y/N]` prompt with `answer`: the interactive path an operator sees. With `keys`, those are
 * typed as they are (e.g. `\x03`, Ctrl-C) once the output shows `keys.after` instead.
 */
export function janOnTerminal(
  args: readonly string[],
  env: Record<string, string>,
  answer: string,
  keys?: { after: string; type: string },
): Promise<CliResult & { prompted: boolean }> {
  if (!existsSync(CLI_MAIN)) throw new Error(`${CLI_MAIN} is missing: build first (pnpm turbo run build --filter=@jan/admin-cli...)`);
  const quote = (value: string) => `'${value.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, CLI_MAIN, ...args].map(quote).join(' ');
  return new Promise((resolveRun, reject) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], {
      cwd: REPO_ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', TERM: 'xterm', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let prompted = false;
    let typed = false;
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (!prompted && stdout.includes('[y/N]')) {
        prompted = true;
        child.stdin.write(`${answer}\n`);
      }
      if (keys && !typed && stdout.includes(keys.after)) {
        typed = true;
        child.stdin.write(keys.type);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', (error) => reject(new Error(`script(1) from util-linux is needed for the terminal tests: ${error.message}`)));
    child.on('close', (code) => resolveRun({ code, stdout, stderr, prompted }));
  });
}
