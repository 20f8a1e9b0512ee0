import { resolveConnection } from './config';
import { CliError, ExitCode, UsageError } from './exit-codes';

describe('resolveConnection', () => {
  const env = { MEDIA_API_URL: 'http://127.0.0.1:8285', MEDIA_ADMIN_KEY: 'env-key', MEDIA_ADMIN_TOKEN: 'env-token' };

  it('reads the URL and the admin key from the environment, key before token', () => {
    expect(resolveConnection({}, env)).toEqual({ baseURL: 'http://127.0.0.1:8285', adminKey: 'env-key', bearerToken: undefined, timeoutMs: undefined, maxRetries: undefined });
    expect(resolveConnection({}, { ...env, MEDIA_ADMIN_KEY: '' })).toMatchObject({ adminKey: undefined, bearerToken: 'env-token' });
  });

  it('lets flags win over the environment, and a token flag over an env key', () => {
    const flags = resolveConnection({ url: 'https://media.example/base', token: 't', timeout: 5, retries: 0 }, env);
    expect(flags).toEqual({ baseURL: 'https://media.example/base', adminKey: undefined, bearerToken: 't', timeoutMs: 5000, maxRetries: 0 });
    expect(resolveConnection({ adminKey: ' k ' }, env)).toMatchObject({ adminKey: 'k', bearerToken: undefined });
  });

  it('refuses two credential flags, a missing or non-http URL (usage)', () => {
    expect(() => resolveConnection({ adminKey: 'a', token: 'b' }, env)).toThrow(UsageError);
    expect(() => resolveConnection({}, { MEDIA_ADMIN_KEY: 'k' })).toThrow(/MEDIA_API_URL/);
    expect(() => resolveConnection({ url: 'not a url' }, env)).toThrow(UsageError);
    expect(() => resolveConnection({ url: 'ftp://x' }, env)).toThrow(/http\(s\)/);
  });

  it('reports a missing credential as an auth failure (exit 4)', () => {
    let caught: unknown;
    try {
      resolveConnection({}, { MEDIA_API_URL: 'http://127.0.0.1:1' });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(CliError);
    expect((caught as CliError).exitCode).toBe(ExitCode.Auth);
  });
});
