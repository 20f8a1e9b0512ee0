import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, VARIABLES, loadConfig } from './media-config';
import { parseBytes, parseDurationSeconds } from './durations';

describe('loadConfig', () => {
  it('runs on embedded defaults with no variables at all', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 8285,
      storageBackend: 'local',
      maxBytes: 20 * 1024 * 1024,
      retentionDays: 30,
      presignTtlSeconds: 900,
      proxyDownload: true,
      remoteFetchTimeoutMs: 15_000,
      reencode: 'off',
      dbPreparedStatements: true,
      auditRetentionDays: 0,
      localFsync: true,
    });
    expect(config.embedded).toBe(true);
    expect(config.publicUrl).toBe('http://localhost:8285');
  });

  it('reads durations, sizes, lists and aliases', () => {
    const config = loadConfig({
      MEDIA_API_PORT: '9000',
      MEDIA_MAX_BYTES: '5MiB',
      MEDIA_S3_PRESIGN_TTL: '2m',
      MEDIA_REMOTE_FETCH_TIMEOUT: '1500ms',
      MEDIA_SERVICE_KEY: 'first-key-0123456789, second-key-0123456789',
      MEDIA_PUBLIC_URL: 'https://media.example.com/',
      DB_PREPARED_STATEMENTS: 'false',
      MEDIA_AUDIT_RETENTION_DAYS: '400',
      MEDIA_LOCAL_FSYNC: 'false',
    });
    expect(config.localFsync).toBe(false);
    expect(config.dbPreparedStatements).toBe(false);
    expect(config.auditRetentionDays).toBe(400);
    expect(config.maxBytes).toBe(5 * 1024 * 1024);
    expect(config.presignTtlSeconds).toBe(120);
    expect(config.remoteFetchTimeoutMs).toBe(1500);
    expect(config.serviceKeys).toEqual(['first-key-0123456789', 'second-key-0123456789']);
    expect(config.publicUrl).toBe('https://media.example.com');
  });

  it("reads the earlier Go service's values as it did: Go durations and strconv.ParseBool's t and F", () => {
    const config = loadConfig({ MEDIA_S3_PRESIGN_TTL: '1h30m', MEDIA_REMOTE_FETCH_TIMEOUT: '1m0s', MEDIA_PROXY_DOWNLOAD: 'F', MEDIA_S3_USE_PATH_STYLE: 't' });
    expect(config.presignTtlSeconds).toBe(5400);
    expect(config.remoteFetchTimeoutMs).toBe(60_000);
    expect(config.proxyDownload).toBe(false);
    expect(config.s3ForcePathStyle).toBe(true);
  });

  it('fails fast listing every bad variable, never echoing secrets', () => {
    let error: unknown;
    try {
      loadConfig({
        MEDIA_API_PORT: 'eighty',
        MEDIA_STORAGE_BACKEND: 'ftp',
        MEDIA_PRESIGN_TTL: 'soon',
        DB_POSTGRESQL_WRITE_DSN: 'postgres://x/y',
        MEDIA_SERVICE_KEY: 'short',
        MEDIA_PROXY_DOWNLOAD: 'maybe',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const text = (error as ConfigError).problems.join('\n');
    for (const name of ['MEDIA_API_PORT', 'MEDIA_STORAGE_BACKEND', 'MEDIA_PRESIGN_TTL', 'MEDIA_SERVICE_KEY', 'MEDIA_PROXY_DOWNLOAD']) expect(text).toContain(name);
    expect(text).not.toContain('short');
  });

  it('refuses a database DSN node-postgres would take for a host name, without echoing it', () => {
    let error: unknown;
    try {
      loadConfig({ DB_POSTGRESQL_WRITE_DSN: 'host=db user=jan password=hunter2', DB_POSTGRESQL_READ1_DSN: 'db.internal:5432/jan', MEDIA_SERVICE_KEY: 'k'.repeat(32), MEDIA_SIGNING_KEYS: `k1:${'s'.repeat(32)}` });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const text = (error as ConfigError).problems.join('\n');
    expect(text).toContain('DB_POSTGRESQL_WRITE_DSN: must be a postgres:// (or postgresql://) URL, or a Unix socket path (got (hidden))');
    expect(text).toContain('DB_POSTGRESQL_READ1_DSN: must be a postgres://');
    expect(text).not.toContain('hunter2');
    for (const dsn of ['postgres://jan@db/jan', 'postgresql://db:5432/jan?sslmode=require', 'socket:/var/run/postgresql?db=jan', '/var/run/postgresql jan', 'POSTGRES://jan@db/jan', 'PostgreSQL://db/jan']) {
      // A URL scheme is case-insensitive (RFC 3986 §3.1), and node-postgres reads these as URLs.
      expect(loadConfig({ DB_POSTGRESQL_WRITE_DSN: dsn, MEDIA_SERVICE_KEY: 'k'.repeat(32), MEDIA_SIGNING_KEYS: `k1:${'s'.repeat(32)}` }).writeDsn).toBe(dsn);
    }
  });

  it.each([
    [{ MEDIA_SCANNER: 'webhook', MEDIA_SCANNER_WEBHOOK_URL: 'http://dlp_scanner:8080/scan?token=hunter2-token' }, 'MEDIA_SCANNER_WEBHOOK_URL', '"http://dlp_scanner:8080/scan?(hidden)"'],
    [{ MEDIA_SCANNER: 'webhook', MEDIA_SCANNER_WEBHOOK_URL: 'ftp://scan:hunter2-token@dlp/scan' }, 'MEDIA_SCANNER_WEBHOOK_URL', '"ftp://(hidden)@dlp/scan"'],
    [{ AUTH_ENABLED: 'true', AUTH_ISSUER: 'x', AUTH_JWKS_URL: 'http://kc_1/certs#hunter2-token' }, 'AUTH_JWKS_URL', '"http://kc_1/certs?(hidden)"'],
    [{ MEDIA_PUBLIC_URL: 'http://media:hunter2-token@media_api' }, 'MEDIA_PUBLIC_URL', '"http://(hidden)@media_api"'],
  ])('names a bad URL without the credentials it may carry (user info, query): %j', (env, variable, shown) => {
    let error: unknown;
    try {
      loadConfig(env);
    } catch (e) {
      error = e;
    }
    const text = (error as ConfigError).problems.join('\n');
    expect(text).toContain(`${variable}: must be a URL address (got ${shown})`);
    expect(text).not.toContain('hunter2');
  });

  it('requires bucket names for cloud backends', () => {
    expect(() => loadConfig({ MEDIA_STORAGE_BACKEND: 's3' })).toThrow(/MEDIA_S3_BUCKET/);
    expect(() => loadConfig({ MEDIA_STORAGE_BACKEND: 'gcs' })).toThrow(/MEDIA_GCS_BUCKET/);
  });

  it('scans nothing by default, and reads the clamd and webhook scanner settings', () => {
    expect(loadConfig({}).scanner).toBe('none');
    expect(loadConfig({ MEDIA_SCANNER: 'ClamD', MEDIA_SCANNER_CLAMD_ADDRESS: '/run/clamav/clamd.ctl', MEDIA_SCANNER_TIMEOUT: '5s' })).toMatchObject({
      scanner: 'clamd',
      scannerClamdAddress: '/run/clamav/clamd.ctl',
      scannerClamdMaxBytes: 25 * 1024 * 1024,
      scannerTimeoutMs: 5_000,
    });
    expect(loadConfig({ MEDIA_SCANNER: 'webhook', MEDIA_SCANNER_WEBHOOK_URL: 'http://dlp.internal:8080/scan' }).scannerWebhookUrl).toBe('http://dlp.internal:8080/scan');
  });

  it.each([
    [{ MEDIA_SCANNER: 'virustotal' }, 'MEDIA_SCANNER'],
    [{ MEDIA_SCANNER: 'webhook' }, 'MEDIA_SCANNER_WEBHOOK_URL'],
    [{ MEDIA_SCANNER: 'clamd', MEDIA_SCANNER_CLAMD_ADDRESS: 'localhost' }, 'MEDIA_SCANNER_CLAMD_ADDRESS'],
    [{ MEDIA_SCANNER: 'clamd', MEDIA_MAX_BYTES: '30MiB' }, 'MEDIA_SCANNER_CLAMD_MAX_BYTES'],
  ])('refuses a scanner setting that cannot work: %j', (env, variable) => {
    expect(() => loadConfig(env)).toThrow(expect.objectContaining({ message: expect.stringContaining(variable) }));
  });

  it('is documented: docs/configuration.md names every variable', () => {
    const doc = readFileSync(join(__dirname, '../../../../docs/configuration.md'), 'utf8');
    const missing = Object.values(VARIABLES).filter((name) => !doc.includes(`\`${name}\``));
    expect(missing).toEqual([]);
  });
});

describe('identity, limits and CORS', () => {
  it('is closed by default: no tokens, no admin or gateway keys, no CORS, no quota, a per-user rate limit', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      authEnabled: false,
      authAudience: 'account',
      authAdminRole: 'media-admin',
      authClockSkewSeconds: 30,
      adminKeys: [],
      apiKeys: [],
      corsOrigins: [],
      quotaBytes: 0,
      quotaObjects: 0,
      rateLimit: 600,
      rateLimitService: 0,
      rateLimitWindowSeconds: 60,
    });
  });

  it('reads JWT settings, gateway keys (a key may contain ":"), quotas and origins', () => {
    const config = loadConfig({
      AUTH_ENABLED: 'true',
      AUTH_ISSUER: 'https://id.jan.ai/realms/jan',
      AUTH_JWKS_URL: 'https://id.jan.ai/realms/jan/protocol/openid-connect/certs',
      ACCOUNT: 'jan-media',
      MEDIA_API_KEYS: 'kong:key:0123456789abcdef:service:kong-llm-api, ops-0123456789abcdef:admin:ops',
      MEDIA_API_KEY: 'legacy-key-0123456789',
      MEDIA_QUOTA_BYTES: '1GiB',
      MEDIA_QUOTA_OBJECTS: '5000',
      MEDIA_CORS_ORIGINS: 'https://app.jan.ai/, http://localhost:3000',
    });
    expect(config.authAudience).toBe('jan-media');
    expect(config.apiKeys).toEqual([
      { key: 'kong:key:0123456789abcdef', kind: 'service', name: 'kong-llm-api' },
      { key: 'ops-0123456789abcdef', kind: 'admin', name: 'ops' },
      { key: 'legacy-key-0123456789', kind: 'service', name: 'api-key-1' },
    ]);
    expect(config.quotaBytes).toBe(1024 ** 3);
    expect(config.corsOrigins).toEqual(['https://app.jan.ai', 'http://localhost:3000']);
  });

  it('refuses incomplete JWT settings, bad gateway keys, wildcard CORS and reused keys, never echoing keys', () => {
    let error: unknown;
    try {
      loadConfig({
        AUTH_ENABLED: 'true',
        MEDIA_API_KEYS: 'short:service:x,0123456789abcdefgh:root:x',
        MEDIA_CORS_ORIGINS: '*',
        MEDIA_SERVICE_KEY: 'same-key-0123456789',
        MEDIA_ADMIN_KEY: 'same-key-0123456789',
      });
    } catch (e) {
      error = e;
    }
    const text = (error as ConfigError).problems.join('\n');
    for (const name of ['AUTH_ISSUER', 'AUTH_JWKS_URL', 'MEDIA_API_KEYS entry 1', 'MEDIA_API_KEYS entry 2', 'MEDIA_CORS_ORIGINS', 'only once']) expect(text).toContain(name);
    expect(text).not.toContain('same-key');
    expect(text).not.toContain('0123456789abcdefgh');
  });
});

describe('MEDIA_TRUST_PROXY', () => {
  it.each([
    [undefined, false],
    ['false', false],
    ['true', true],
    ['1', 1],
    ['10.0.0.0/8, 127.0.0.1', ['10.0.0.0/8', '127.0.0.1']],
  ])('%s → %j', (raw, expected) => {
    expect(loadConfig(raw === undefined ? {} : { MEDIA_TRUST_PROXY: raw }).trustProxy).toEqual(expected);
  });
  it('refuses anything else', () => {
    expect(() => loadConfig({ MEDIA_TRUST_PROXY: 'the ingress' })).toThrow(/MEDIA_TRUST_PROXY/);
  });

  // 99999999 days puts every new object's retention_until past the last date JavaScript can hold:
  // the service started, then answered every upload 500. MEDIA_AUDIT_RETENTION_DAYS likewise broke
  // every prune.
  it.each(['MEDIA_RETENTION_DAYS', 'MEDIA_AUDIT_RETENTION_DAYS'])('refuses %s past 1,000,000 days at start-up', (name) => {
    expect(() => loadConfig({ [name]: '99999999' })).toThrow(`${name}: must not be greater than 1000000 (got 99999999)`);
    expect(() => loadConfig({ [name]: '1000000' })).not.toThrow();
  });

  // A timer over 2^31-1 ms fires after 1 ms instead: "30d" swept (and listed the storage for stale
  // files) hundreds of times a second.
  it('refuses a MEDIA_RETENTION_SWEEP_INTERVAL longer than a timer can wait (24 days)', () => {
    expect(() => loadConfig({ MEDIA_RETENTION_SWEEP_INTERVAL: '30d' })).toThrow('MEDIA_RETENTION_SWEEP_INTERVAL: must not be greater than 2073600 seconds (got 2592000 seconds)');
    expect(loadConfig({ MEDIA_RETENTION_SWEEP_INTERVAL: '24d' }).retentionSweepIntervalSeconds).toBe(2_073_600);
  });

  // The same limit for every duration that ends up in a timer or a signature's lifetime.
  it.each([
    ['MEDIA_REMOTE_FETCH_TIMEOUT', '11m', '600000 ms'],
    ['MEDIA_SCANNER_TIMEOUT', '11m', '600000 ms'],
    ['MEDIA_SHUTDOWN_GRACE', '2h', '3600000 ms'],
    ['MEDIA_UPLOAD_TTL', '8d', '604800 seconds'],
  ])('refuses %s = %s, longer than it can mean', (name, value, limit) => {
    expect(() => loadConfig({ [name]: value })).toThrow(`${name}: must not be greater than ${limit}`);
  });

  it("states a refused duration in the variable's terms, not the field it is parsed into", () => {
    expect(() => loadConfig({ MEDIA_PRESIGN_TTL: '30d' })).toThrow('MEDIA_PRESIGN_TTL: must not be greater than 604800 seconds (got 2592000 seconds)');
    expect(() => loadConfig({ MEDIA_PRESIGN_TTL: '30d' })).not.toThrow(/presignTtlSeconds/);
  });
});

describe('durations and sizes', () => {
  it.each([
    ['900', 900],
    ['15m', 900],
    ['1h', 3600],
    ['250ms', 0.25],
    ['2d', 172_800],
  ])('%s is %d seconds', (raw, seconds) => expect(parseDurationSeconds(raw)).toBe(seconds));
  // The earlier (Go) service read these variables with time.ParseDuration, so deployed values may
  // be written the way Go writes them: compound, with ns/us/µs units, or with a leading dot.
  it.each([
    ['1h30m', 5400],
    ['168h0m0s', 604_800],
    ['1m30.5s', 90.5],
    ['1500ms', 1.5],
    ['.5h', 1800],
    ['2s500ms', 2.5],
    ['1500000us', 1.5],
    ['1500000µs', 1.5],
    ['1500000000ns', 1.5],
  ])('%s (Go duration syntax) is %d seconds', (raw, seconds) => expect(parseDurationSeconds(raw)).toBeCloseTo(seconds, 9));
  it('rejects nonsense', () => {
    expect(parseDurationSeconds('1h 30m')).toBeNaN();
    expect(parseDurationSeconds('1h30')).toBeNaN();
    expect(parseDurationSeconds('h')).toBeNaN();
    expect(parseDurationSeconds('-1h')).toBeNaN();
    expect(parseDurationSeconds('soon')).toBeNaN();
    expect(parseBytes('lots')).toBeNaN();
    expect(parseBytes('64KiB')).toBe(65_536);
  });
});
