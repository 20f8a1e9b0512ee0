import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MediaConfig } from './media-config';

/**
 * On the embedded default no secrets are configured: generate a service key and a URL-signing key
 * once, keep them in the data directory (mode 0600), and reuse them on every start.
 * Returns the generated service key when one was created or loaded, so start-up can print it.
 */
export async function ensureGeneratedSecrets(config: MediaConfig): Promise<{ serviceKey?: string }> {
  const dir = join(config.dataDir, 'secrets');
  let serviceKey: string | undefined;
  if (config.serviceKeys.length === 0) {
    serviceKey = await readOrCreate(join(dir, 'service-key'), () => randomBytes(24).toString('base64url'));
    config.serviceKeys = [serviceKey];
  }
  if (config.signingKeys.length === 0) {
    const secret = await readOrCreate(join(dir, 'signing-key'), () => randomBytes(32).toString('base64url'));
    config.signingKeys = [`local1:${secret}`];
  }
  return { serviceKey };
}

async function readOrCreate(path: string, make: () => string): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
  const value = make();
  try {
    await writeFile(path, value + '\n', { mode: 0o600, flag: 'wx' });
    return value;
  } catch (error) {
    // Another process created it first: use theirs.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return (await readFile(path, 'utf8')).trim();
    throw error;
  }
}
