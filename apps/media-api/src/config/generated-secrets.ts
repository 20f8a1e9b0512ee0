import { randomBytes } from 'node:crypto';
import { link, mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, type MediaConfig } from './media-config';

/**
 * On the embedded default no secrets are configured: generate a service key and a URL-signing key
 * once, keep them in the data directory (mode 0600), and reuse them on every start.
 * Returns the generated service key when one was created or loaded, so start-up can print it.
 */
export async function ensureGeneratedSecrets(config: MediaConfig): Promise<{ serviceKey?: string }> {
  const dir = join(config.dataDir, 'secrets');
  let serviceKey: string | undefined;
  if (config.serviceKeys.length === 0) {
    // The same floors as MEDIA_SERVICE_KEY and MEDIA_SIGNING_KEYS (generated: 32 and 43 characters).
    serviceKey = await readOrCreate(join(dir, 'service-key'), 16, () => randomBytes(24).toString('base64url'));
    config.serviceKeys = [serviceKey];
  }
  if (config.signingKeys.length === 0) {
    const secret = await readOrCreate(join(dir, 'signing-key'), 32, () => randomBytes(32).toString('base64url'));
    config.signingKeys = [`local1:${secret}`];
  }
  return { serviceKey };
}

async function readOrCreate(path: string, minLength: number, make: () => string): Promise<string> {
  const existing = await readSecret(path, minLength);
  if (existing !== undefined) return existing;
  await mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
  const value = make();
  // Written whole under a temporary name, then linked into place: the file is never seen (by
  // another process, or after a crash) empty or half written. link() fails if it exists.
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const handle = await open(temporary, 'wx', 0o600);
    try {
      await handle.writeFile(value + '\n');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await link(temporary, path);
    return value;
  } catch (error) {
    // Another process created it first: use theirs.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return readOrCreate(path, minLength, make);
    throw error;
  } finally {
    await rm(temporary, { force: true });
  }
}

/**
 * The secret in `path`, or undefined when there is no file. An empty or short one (a truncated
 * file, a bad restore) stops start-up: trusted as it was, an empty service key let every request
 * with an empty `X-Media-Service-Key` in, and an empty signing key made signed URLs forgeable.
 * So does one that group or others may read or write (a restore with `cp`, a wide umask): as
 * OpenSSH refuses an unprotected private key, the service refuses a secret that may already have
 * leaked, or been replaced, rather than use it silently.
 */
async function readSecret(path: string, minLength: number): Promise<string | undefined> {
  let text: string;
  let mode: number;
  try {
    // The mode of the file that is read (fstat on the open handle), not of whatever the path names next.
    const handle = await open(path, 'r');
    try {
      mode = (await handle.stat()).mode;
      text = await handle.readFile('utf8');
    } finally {
      await handle.close();
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError([`${path}: cannot read the generated secret (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`]);
  }
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    throw new ConfigError([
      `${path}: the generated secret is accessible by group or others (mode ${(mode & 0o777).toString(8).padStart(4, '0')}); ` +
        `run \`chmod 600 ${path}\` (and replace the key if others may have read it)`,
    ]);
  }
  const value = text.trim();
  if (!new RegExp(`^[\\x21-\\x7e]{${minLength},}$`).test(value)) {
    throw new ConfigError([
      `${path}: the generated secret is empty, truncated or damaged (expected at least ${minLength} printable characters); ` +
        'restore it from a backup, or delete the file to generate a new one (callers then need the new key)',
    ]);
  }
  return value;
}
