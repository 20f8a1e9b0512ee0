import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureGeneratedSecrets } from './generated-secrets';
import { ConfigError, loadConfig } from './media-config';

describe('ensureGeneratedSecrets', () => {
  let dataDir: string;
  const config = () => loadConfig({ MEDIA_DATA_DIR: dataDir });

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'jan-media-secrets-'));
  });
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('generates the keys once, mode 0600, leaves no temporary file, and reuses them', async () => {
    const first = config();
    const { serviceKey } = await ensureGeneratedSecrets(first);
    expect(serviceKey).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(first.serviceKeys).toEqual([serviceKey]);
    expect(first.signingKeys).toEqual([expect.stringMatching(/^local1:[A-Za-z0-9_-]{43}$/)]);
    expect((await readdir(join(dataDir, 'secrets'))).sort()).toEqual(['service-key', 'signing-key']);
    for (const file of ['service-key', 'signing-key']) expect((await stat(join(dataDir, 'secrets', file))).mode & 0o777).toBe(0o600);

    const second = config();
    await ensureGeneratedSecrets(second);
    expect(second.serviceKeys).toEqual(first.serviceKeys);
    expect(second.signingKeys).toEqual(first.signingKeys);
  });

  it.each([
    ['service-key', ''],
    ['service-key', '\n'],
    ['service-key', 'abc'],
    ['signing-key', ''],
    ['signing-key', 'short-secret'],
  ])('refuses a %s file that is empty or truncated (%j) instead of trusting it', async (file, contents) => {
    await ensureGeneratedSecrets(config());
    await writeFile(join(dataDir, 'secrets', file), contents);

    const attempt = ensureGeneratedSecrets(config());
    await expect(attempt).rejects.toBeInstanceOf(ConfigError);
    await expect(attempt).rejects.toThrow(join(dataDir, 'secrets', file));
    // Left as it was, for the operator to restore or delete.
    expect(await readFile(join(dataDir, 'secrets', file), 'utf8')).toBe(contents);
  });

  it.each([
    ['service-key', '0644'],
    ['service-key', '0640'],
    ['service-key', '0604'],
    ['signing-key', '0660'],
    ['signing-key', '0602'],
  ])('refuses a %s file that group or others may access (mode %s), naming it and the chmod fix', async (file, octal) => {
    const mode = parseInt(octal, 8);
    await ensureGeneratedSecrets(config());
    const path = join(dataDir, 'secrets', file);
    const before = await readFile(path, 'utf8');
    await chmod(path, mode);

    const attempt = ensureGeneratedSecrets(config());
    await expect(attempt).rejects.toBeInstanceOf(ConfigError);
    await expect(attempt).rejects.toThrow(`chmod 600 ${path}`);
    await expect(attempt).rejects.toThrow(`mode ${octal}`);
    // Neither rewritten nor re-moded behind the operator's back.
    expect(await readFile(path, 'utf8')).toBe(before);
    expect((await stat(path)).mode & 0o777).toBe(mode);
  });

  it.each(['0600', '0400'])('uses a secret file of mode %s as it is', async (octal) => {
    const mode = parseInt(octal, 8);
    const first = config();
    await ensureGeneratedSecrets(first);
    for (const file of ['service-key', 'signing-key']) await chmod(join(dataDir, 'secrets', file), mode);

    const second = config();
    await ensureGeneratedSecrets(second);
    expect(second.serviceKeys).toEqual(first.serviceKeys);
    expect(second.signingKeys).toEqual(first.signingKeys);
  });

  it('refuses a secrets path that cannot be read as a file, naming it', async () => {
    await ensureGeneratedSecrets(config());
    await rm(join(dataDir, 'secrets', 'service-key'));
    await mkdir(join(dataDir, 'secrets', 'service-key'));

    await expect(ensureGeneratedSecrets(config())).rejects.toThrow(new RegExp(`${join(dataDir, 'secrets', 'service-key')}.*EISDIR`));
  });
});
