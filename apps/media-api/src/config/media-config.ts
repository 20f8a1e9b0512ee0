import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { IsBoolean, IsIn, IsInt, IsOptional, IsString, IsUrl, Matches, Max, Min, MinLength, ValidateIf, validateSync } from 'class-validator';
import { parseBytes, parseDurationSeconds } from './durations';

export type StorageBackend = 'local' | 's3' | 'gcs';

/** One `MEDIA_API_KEYS` entry: the key the gateway forwards in `X-API-Key`, and who it is. */
export interface ApiKeyEntry {
  key: string;
  kind: 'service' | 'admin' | 'user';
  name: string;
}
export type ReencodeMode = 'off' | 'strip' | 'normalize';
export type ScannerKind = 'none' | 'clamd' | 'webhook';

const MAX_RETENTION_DAYS = 1_000_000;

/**
 * A connection string node-postgres reads as one: a `postgres://` or `postgresql://` URL (any case), or a
 * `socket:` URL / absolute path of a Unix socket directory. Anything else would be taken for a host
 * name and fail only at the first connection, as `ENOTFOUND`.
 */
const POSTGRES_DSN = /^(?:postgres(?:ql)?:\/\/|socket:|\/)/i;
const POSTGRES_DSN_RULE = 'must be a postgres:// (or postgresql://) URL, or a Unix socket path';

/**
 * Every setting of the media API, validated at boot. Property → variable names are in
 * `VARIABLES`; docs/configuration.md lists them with their defaults.
 */
export class MediaConfig {
  @IsInt() @Min(0) @Max(65535) port!: number;
  @IsString() host!: string;
  @IsString() dataDir!: string;
  @IsUrl({ require_tld: false, protocols: ['http', 'https'], require_protocol: true }) publicUrl!: string;
  @IsString({ each: true }) @MinLength(16, { each: true }) serviceKeys!: string[];
  @IsIn(['local', 's3', 'gcs']) storageBackend!: StorageBackend;
  @IsString() localStoragePath!: string;
  @IsBoolean() localFsync!: boolean;
  @IsString({ each: true }) signingKeys!: string[];

  @IsInt() @Min(1) maxBytes!: number;
  @IsInt() @Min(1) maxPixels!: number;
  @IsIn(['off', 'strip', 'normalize']) reencode!: ReencodeMode;
  /** At most 1,000,000 days (about 2,700 years, far inside the ~100,000,000 days a JavaScript Date holds), so a retention or audit cut-off date is always valid; 0 is "forever". */
  @IsInt() @Min(0) @Max(MAX_RETENTION_DAYS) retentionDays!: number;
  @IsInt() @Min(0) @Max(MAX_RETENTION_DAYS) auditRetentionDays!: number;
  @IsInt() @Min(1) @Max(7 * 86_400) presignTtlSeconds!: number;
  @IsInt() @Min(0) presignCacheSize!: number;
  @IsBoolean() proxyDownload!: boolean;
  @IsInt() @Min(1) @Max(600_000) remoteFetchTimeoutMs!: number;
  @IsString({ each: true }) remoteFetchAllowCidrs!: string[];
  @IsOptional() @IsString() remoteFetchCaFile?: string;
  @IsIn(['none', 'clamd', 'webhook']) scanner!: ScannerKind;
  @IsString() @MinLength(1) scannerClamdAddress!: string;
  @IsInt() @Min(1) scannerClamdMaxBytes!: number;
  @ValidateIf((c: MediaConfig) => c.scanner === 'webhook') @IsUrl({ require_tld: false, protocols: ['http', 'https'], require_protocol: true }) scannerWebhookUrl?: string;
  @IsInt() @Min(1) @Max(600_000) scannerTimeoutMs!: number;
  @IsBoolean() resolveInline!: boolean;
  @IsInt() @Min(1) inlineMaxImageBytes!: number;
  @IsInt() @Min(1) inlineMaxRequestBytes!: number;
  @IsInt() @Min(60) @Max(7 * 86_400) uploadTtlSeconds!: number;
  /** A timer of more than 2^31-1 ms fires after 1 ms: 24 days is the longest whole-day interval. */
  @IsInt() @Min(0) @Max(24 * 86_400) retentionSweepIntervalSeconds!: number;
  @IsInt() @Min(0) @Max(3_600_000) shutdownGraceMs!: number;
  /** On SIGTERM, how long /readyz fails while connections are still accepted, before the drain. */
  @IsInt() @Min(0) @Max(300_000) shutdownDelayMs!: number;
  /** Longest a request may take to arrive, headers and body; 0 = no limit. */
  @IsInt() @Min(0) @Max(86_400_000) requestTimeoutMs!: number;
  @IsInt() @Min(0) bodyMemoryBudget!: number;
  /** Fastify's trustProxy: false, true, a hop count, or a list of proxy addresses/CIDRs. */
  trustProxy!: boolean | number | string[];

  @IsBoolean() authEnabled!: boolean;
  @ValidateIf((c: MediaConfig) => c.authEnabled) @IsString() @MinLength(1) authIssuer?: string;
  @ValidateIf((c: MediaConfig) => c.authEnabled) @IsUrl({ require_tld: false, protocols: ['http', 'https'], require_protocol: true }) authJwksUrl?: string;
  @IsString() @MinLength(1) authAudience!: string;
  @IsString() @MinLength(1) authAdminRole!: string;
  @IsInt() @Min(0) @Max(300) authClockSkewSeconds!: number;
  @IsInt() @Min(0) @Max(86_400_000) authJwksCooldownMs!: number;
  @IsString({ each: true }) @MinLength(16, { each: true }) adminKeys!: string[];
  apiKeys!: ApiKeyEntry[];
  @IsInt() @Min(0) quotaBytes!: number;
  @IsInt() @Min(0) quotaObjects!: number;
  @IsInt() @Min(0) rateLimit!: number;
  @IsInt() @Min(0) rateLimitService!: number;
  @IsInt() @Min(0) rateLimitPublic!: number;
  @IsInt() @Min(1) @Max(86_400) rateLimitWindowSeconds!: number;
  @IsOptional() @IsString() redisUrl?: string;
  @IsString({ each: true }) corsOrigins!: string[];

  @IsOptional() @IsString() @Matches(POSTGRES_DSN, { message: POSTGRES_DSN_RULE }) writeDsn?: string;
  @IsOptional() @IsString() @Matches(POSTGRES_DSN, { message: POSTGRES_DSN_RULE }) readDsn?: string;
  @IsInt() @Min(1) @Max(200) dbPoolSize!: number;
  @IsBoolean() dbPreparedStatements!: boolean;
  @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) logLevel!: string;

  @ValidateIf((c: MediaConfig) => c.storageBackend === 's3') @IsString() @MinLength(3) s3Bucket?: string;
  @IsString() s3Region!: string;
  @IsOptional() @IsString() s3Endpoint?: string;
  @IsOptional() @IsString() s3PublicEndpoint?: string;
  @IsBoolean() s3ForcePathStyle!: boolean;
  @IsOptional() @IsString() s3KmsKeyId?: string;
  @IsOptional() @IsString() s3AccessKeyId?: string;
  @IsOptional() @IsString() s3SecretAccessKey?: string;
  @IsOptional() @IsString() s3UploadAccessKeyId?: string;
  @IsOptional() @IsString() s3UploadSecretAccessKey?: string;
  @IsOptional() @IsString() s3ServeAccessKeyId?: string;
  @IsOptional() @IsString() s3ServeSecretAccessKey?: string;

  @ValidateIf((c: MediaConfig) => c.storageBackend === 'gcs') @IsString() @MinLength(3) gcsBucket?: string;
  @IsOptional() @IsString() gcsKmsKeyName?: string;
  @IsOptional() @IsString() gcsApiEndpoint?: string;
  @IsOptional() @IsString() gcsKeyFile?: string;
  @IsOptional() @IsString() gcsUploadKeyFile?: string;
  @IsOptional() @IsString() gcsServeKeyFile?: string;
  @IsBoolean() gcsResumable!: boolean;

  /** True when no DSN is set: the embedded database and generated secrets are in use. */
  get embedded(): boolean {
    return !this.writeDsn;
  }
}

/** Variable name of each property, for error messages and docs. */
export const VARIABLES: Record<string, string> = {
  port: 'MEDIA_API_PORT',
  host: 'MEDIA_API_HOST',
  dataDir: 'MEDIA_DATA_DIR',
  publicUrl: 'MEDIA_PUBLIC_URL',
  serviceKeys: 'MEDIA_SERVICE_KEY',
  storageBackend: 'MEDIA_STORAGE_BACKEND',
  localStoragePath: 'MEDIA_LOCAL_STORAGE_PATH',
  localFsync: 'MEDIA_LOCAL_FSYNC',
  signingKeys: 'MEDIA_SIGNING_KEYS',
  maxBytes: 'MEDIA_MAX_BYTES',
  maxPixels: 'MEDIA_MAX_PIXELS',
  reencode: 'MEDIA_REENCODE',
  retentionDays: 'MEDIA_RETENTION_DAYS',
  auditRetentionDays: 'MEDIA_AUDIT_RETENTION_DAYS',
  presignTtlSeconds: 'MEDIA_PRESIGN_TTL',
  presignCacheSize: 'MEDIA_PRESIGN_CACHE_SIZE',
  proxyDownload: 'MEDIA_PROXY_DOWNLOAD',
  remoteFetchTimeoutMs: 'MEDIA_REMOTE_FETCH_TIMEOUT',
  remoteFetchAllowCidrs: 'MEDIA_REMOTE_FETCH_ALLOW_CIDRS',
  remoteFetchCaFile: 'MEDIA_REMOTE_FETCH_CA_FILE',
  scanner: 'MEDIA_SCANNER',
  scannerClamdAddress: 'MEDIA_SCANNER_CLAMD_ADDRESS',
  scannerClamdMaxBytes: 'MEDIA_SCANNER_CLAMD_MAX_BYTES',
  scannerWebhookUrl: 'MEDIA_SCANNER_WEBHOOK_URL',
  scannerTimeoutMs: 'MEDIA_SCANNER_TIMEOUT',
  resolveInline: 'MEDIA_RESOLVE_INLINE',
  inlineMaxImageBytes: 'MEDIA_RESOLVE_INLINE_MAX_IMAGE_BYTES',
  inlineMaxRequestBytes: 'MEDIA_RESOLVE_INLINE_MAX_REQUEST_BYTES',
  uploadTtlSeconds: 'MEDIA_UPLOAD_TTL',
  retentionSweepIntervalSeconds: 'MEDIA_RETENTION_SWEEP_INTERVAL',
  shutdownGraceMs: 'MEDIA_SHUTDOWN_GRACE',
  shutdownDelayMs: 'MEDIA_SHUTDOWN_DELAY',
  requestTimeoutMs: 'MEDIA_REQUEST_TIMEOUT',
  bodyMemoryBudget: 'MEDIA_BODY_MEMORY_BUDGET',
  trustProxy: 'MEDIA_TRUST_PROXY',
  authEnabled: 'AUTH_ENABLED',
  authIssuer: 'AUTH_ISSUER',
  authJwksUrl: 'AUTH_JWKS_URL',
  authAudience: 'ACCOUNT',
  authAdminRole: 'AUTH_ADMIN_ROLE',
  authClockSkewSeconds: 'AUTH_CLOCK_SKEW',
  authJwksCooldownMs: 'AUTH_JWKS_COOLDOWN',
  adminKeys: 'MEDIA_ADMIN_KEY',
  apiKeys: 'MEDIA_API_KEYS',
  legacyApiKeys: 'MEDIA_API_KEY',
  quotaBytes: 'MEDIA_QUOTA_BYTES',
  quotaObjects: 'MEDIA_QUOTA_OBJECTS',
  rateLimit: 'MEDIA_RATE_LIMIT',
  rateLimitService: 'MEDIA_RATE_LIMIT_SERVICE',
  rateLimitPublic: 'MEDIA_RATE_LIMIT_PUBLIC',
  rateLimitWindowSeconds: 'MEDIA_RATE_LIMIT_WINDOW',
  redisUrl: 'MEDIA_REDIS_URL',
  corsOrigins: 'MEDIA_CORS_ORIGINS',
  writeDsn: 'DB_POSTGRESQL_WRITE_DSN',
  readDsn: 'DB_POSTGRESQL_READ1_DSN',
  dbPoolSize: 'DB_POOL_SIZE',
  dbPreparedStatements: 'DB_PREPARED_STATEMENTS',
  logLevel: 'LOG_LEVEL',
  s3Bucket: 'MEDIA_S3_BUCKET',
  s3Region: 'MEDIA_S3_REGION',
  s3Endpoint: 'MEDIA_S3_ENDPOINT',
  s3PublicEndpoint: 'MEDIA_S3_PUBLIC_ENDPOINT',
  s3ForcePathStyle: 'MEDIA_S3_USE_PATH_STYLE',
  s3KmsKeyId: 'MEDIA_S3_KMS_KEY_ID',
  s3AccessKeyId: 'MEDIA_S3_ACCESS_KEY_ID',
  s3SecretAccessKey: 'MEDIA_S3_SECRET_ACCESS_KEY',
  s3UploadAccessKeyId: 'MEDIA_S3_UPLOAD_ACCESS_KEY_ID',
  s3UploadSecretAccessKey: 'MEDIA_S3_UPLOAD_SECRET_ACCESS_KEY',
  s3ServeAccessKeyId: 'MEDIA_S3_SERVE_ACCESS_KEY_ID',
  s3ServeSecretAccessKey: 'MEDIA_S3_SERVE_SECRET_ACCESS_KEY',
  gcsBucket: 'MEDIA_GCS_BUCKET',
  gcsKmsKeyName: 'MEDIA_GCS_KMS_KEY_NAME',
  gcsApiEndpoint: 'MEDIA_GCS_API_ENDPOINT',
  gcsKeyFile: 'MEDIA_GCS_KEY_FILE',
  gcsUploadKeyFile: 'MEDIA_GCS_UPLOAD_KEY_FILE',
  gcsServeKeyFile: 'MEDIA_GCS_SERVE_KEY_FILE',
  gcsResumable: 'MEDIA_GCS_RESUMABLE',
};

const API_KEY_NAME = /^[\x21-\x2b\x2d-\x39\x3b-\x7e]{1,200}$/;

/**
 * `MEDIA_API_KEYS=<key>:<kind>:<name>,…` with kind `service`, `admin` or `user`. Read from the
 * right, so a key may itself contain `:`; names may not contain `:` or `,`.
 */
function parseApiKeys(entries: string[], problems: string[]): ApiKeyEntry[] {
  const parsed: ApiKeyEntry[] = [];
  entries.forEach((entry, index) => {
    const parts = entry.split(':');
    const name = parts.pop() ?? '';
    const kind = parts.pop() ?? '';
    const key = parts.join(':');
    const where = `MEDIA_API_KEYS entry ${index + 1}`;
    if (!['service', 'admin', 'user'].includes(kind)) problems.push(`${where}: expected <key>:<service|admin|user>:<name>`);
    else if (key.length < 16) problems.push(`${where}: the key must be at least 16 characters`);
    else if (!API_KEY_NAME.test(name)) problems.push(`${where}: the name must be 1-200 printable characters without ':' or ','`);
    else parsed.push({ key, kind: kind as ApiKeyEntry['kind'], name });
  });
  return parsed;
}

/** The earlier service's single `MEDIA_API_KEY`: a gateway key with service rights. */
function legacyApiKey(key: string, index: number, problems: string[]): ApiKeyEntry {
  if (key.length < 16) problems.push('MEDIA_API_KEY: each key must be at least 16 characters');
  return { key, kind: 'service', name: `api-key-${index + 1}` };
}

/**
 * Which peers may set X-Forwarded-For (the client IP in audit rows and logs). Default: nobody,
 * so a caller cannot forge its address; behind an ingress set a hop count or the proxies' CIDRs.
 */
function trustProxyFrom(raw: string | undefined, problems: string[]): boolean | number | string[] {
  if (raw === undefined || ['false', '0', 'no', 'off'].includes(raw.toLowerCase())) return false;
  if (['true', 'yes', 'on'].includes(raw.toLowerCase())) return true;
  if (/^\d+$/.test(raw)) return Number(raw);
  const entries = raw.split(',').map((e) => e.trim()).filter(Boolean);
  if (entries.every((e) => /^[0-9a-f.:]+(\/\d{1,3})?$/i.test(e))) return entries;
  problems.push('MEDIA_TRUST_PROXY: expected false, true, a hop count, or comma-separated addresses/CIDRs');
  return false;
}

/**
 * A refused value as a config error shows it: a URL keeps its scheme, host and path, and loses
 * its user info and query (or fragment), where a webhook's or issuer's credentials ride, so the
 * start-up error in the logs does not carry them.
 */
function withoutUrlCredentials(value: unknown): unknown {
  if (typeof value !== 'string' || !/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return value;
  return value.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^?#]*@/i, '$1(hidden)@').replace(/[?#][\s\S]*$/, '?(hidden)');
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/**
 * Reads and validates configuration from `env`, failing with every bad variable listed.
 * Secrets that the embedded default may generate (service key, signing keys) are left empty here
 * and filled in by `ensureGeneratedSecrets`.
 */
export function loadConfig(env: Env): MediaConfig {
  const problems: string[] = [];
  const get = (name: string) => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  };
  /** `n` when it parsed; otherwise the problem is reported once, here, and the fallback keeps the range checks quiet. */
  const parsed = (name: string, raw: string, n: number, ok: boolean, expected: string, fallback: number) => {
    if (ok) return n;
    problems.push(`${name}: expected ${expected}, got ${JSON.stringify(raw)}`);
    return fallback;
  };
  const int = (name: string, fallback: number) => {
    const raw = get(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    return parsed(name, raw, n, Number.isInteger(n), 'an integer', fallback);
  };
  const bytes = (name: string, fallback: number) => {
    const raw = get(name);
    if (raw === undefined) return fallback;
    const n = parseBytes(raw);
    return parsed(name, raw, n, Number.isFinite(n), 'a size like 20971520 or 20MiB', fallback);
  };
  const seconds = (name: string, fallback: number, alias?: string) => {
    const raw = get(name) ?? (alias ? get(alias) : undefined);
    if (raw === undefined) return fallback;
    const n = parseDurationSeconds(raw);
    return parsed(name, raw, n, Number.isFinite(n), 'a duration like 900, 15m or 1h', fallback);
  };
  const bool = (name: string, fallback: boolean) => {
    const raw = get(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    // `t` and `f` as Go's strconv.ParseBool, which the earlier service read its flags with
    if (['1', 't', 'true', 'yes', 'on'].includes(raw)) return true;
    if (['0', 'f', 'false', 'no', 'off'].includes(raw)) return false;
    problems.push(`${name}: expected true or false, got ${JSON.stringify(raw)}`);
    return fallback;
  };
  const list = (name: string) =>
    (get(name) ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);

  const c = new MediaConfig();
  c.port = int('MEDIA_API_PORT', 8285);
  c.host = get('MEDIA_API_HOST') ?? '0.0.0.0';
  c.dataDir = resolve(get('MEDIA_DATA_DIR') ?? './.data');
  c.publicUrl = (get('MEDIA_PUBLIC_URL') ?? `http://localhost:${c.port}`).replace(/\/+$/, '');
  c.serviceKeys = list('MEDIA_SERVICE_KEY');
  c.storageBackend = (get('MEDIA_STORAGE_BACKEND')?.toLowerCase() ?? 'local') as StorageBackend;
  c.localStoragePath = resolve(get('MEDIA_LOCAL_STORAGE_PATH') ?? join(c.dataDir, 'objects'));
  c.localFsync = bool('MEDIA_LOCAL_FSYNC', true);
  c.signingKeys = list('MEDIA_SIGNING_KEYS');
  c.maxBytes = bytes('MEDIA_MAX_BYTES', 20 * 1024 * 1024);
  c.maxPixels = int('MEDIA_MAX_PIXELS', 50_000_000);
  c.reencode = (get('MEDIA_REENCODE')?.toLowerCase() ?? 'off') as ReencodeMode;
  c.retentionDays = int('MEDIA_RETENTION_DAYS', 30);
  c.auditRetentionDays = int('MEDIA_AUDIT_RETENTION_DAYS', 0);
  c.presignTtlSeconds = Math.round(seconds('MEDIA_PRESIGN_TTL', 15 * 60, 'MEDIA_S3_PRESIGN_TTL'));
  c.presignCacheSize = int('MEDIA_PRESIGN_CACHE_SIZE', 10_000);
  c.proxyDownload = bool('MEDIA_PROXY_DOWNLOAD', true);
  c.remoteFetchTimeoutMs = Math.round(seconds('MEDIA_REMOTE_FETCH_TIMEOUT', 15) * 1000);
  c.remoteFetchAllowCidrs = list('MEDIA_REMOTE_FETCH_ALLOW_CIDRS');
  c.remoteFetchCaFile = get('MEDIA_REMOTE_FETCH_CA_FILE');
  if (c.remoteFetchCaFile && !existsSync(c.remoteFetchCaFile)) problems.push(`MEDIA_REMOTE_FETCH_CA_FILE: no such file ${JSON.stringify(c.remoteFetchCaFile)}`);
  c.scanner = (get('MEDIA_SCANNER')?.toLowerCase() ?? 'none') as ScannerKind;
  c.scannerClamdAddress = get('MEDIA_SCANNER_CLAMD_ADDRESS') ?? '127.0.0.1:3310';
  c.scannerClamdMaxBytes = bytes('MEDIA_SCANNER_CLAMD_MAX_BYTES', 25 * 1024 * 1024);
  c.scannerWebhookUrl = get('MEDIA_SCANNER_WEBHOOK_URL');
  c.scannerTimeoutMs = Math.round(seconds('MEDIA_SCANNER_TIMEOUT', 30) * 1000);
  if (c.scanner === 'clamd' && c.scannerClamdMaxBytes < c.maxBytes) {
    problems.push(
      `MEDIA_SCANNER_CLAMD_MAX_BYTES (${c.scannerClamdMaxBytes}) is below MEDIA_MAX_BYTES (${c.maxBytes}): clamd would drop the larger uploads; raise StreamMaxLength in clamd.conf and this variable`,
    );
  }
  if (c.scanner === 'clamd' && !c.scannerClamdAddress.startsWith('/') && !/^.+:\d+$/.test(c.scannerClamdAddress)) {
    problems.push(`MEDIA_SCANNER_CLAMD_ADDRESS: expected host:port or a socket path, got ${JSON.stringify(c.scannerClamdAddress)}`);
  }
  c.resolveInline = bool('MEDIA_RESOLVE_INLINE', false);
  c.inlineMaxImageBytes = bytes('MEDIA_RESOLVE_INLINE_MAX_IMAGE_BYTES', 5 * 1024 * 1024);
  c.inlineMaxRequestBytes = bytes('MEDIA_RESOLVE_INLINE_MAX_REQUEST_BYTES', 20 * 1024 * 1024);
  c.uploadTtlSeconds = Math.round(seconds('MEDIA_UPLOAD_TTL', 15 * 60));
  c.retentionSweepIntervalSeconds = Math.round(seconds('MEDIA_RETENTION_SWEEP_INTERVAL', 3600));
  c.shutdownGraceMs = Math.round(seconds('MEDIA_SHUTDOWN_GRACE', 10) * 1000);
  c.shutdownDelayMs = Math.round(seconds('MEDIA_SHUTDOWN_DELAY', 0) * 1000);
  c.requestTimeoutMs = Math.round(seconds('MEDIA_REQUEST_TIMEOUT', 300) * 1000);
  c.bodyMemoryBudget = bytes('MEDIA_BODY_MEMORY_BUDGET', 64 * 1024 * 1024);
  c.trustProxy = trustProxyFrom(get('MEDIA_TRUST_PROXY'), problems);
  c.authEnabled = bool('AUTH_ENABLED', false);
  c.authIssuer = get('AUTH_ISSUER');
  c.authJwksUrl = get('AUTH_JWKS_URL');
  c.authAudience = get('ACCOUNT') ?? 'account';
  c.authAdminRole = get('AUTH_ADMIN_ROLE') ?? 'media-admin';
  c.authClockSkewSeconds = Math.round(seconds('AUTH_CLOCK_SKEW', 30));
  c.authJwksCooldownMs = Math.round(seconds('AUTH_JWKS_COOLDOWN', 30) * 1000);
  c.adminKeys = list('MEDIA_ADMIN_KEY');
  c.apiKeys = [...parseApiKeys(list('MEDIA_API_KEYS'), problems), ...list('MEDIA_API_KEY').map((key, i) => legacyApiKey(key, i, problems))];
  c.quotaBytes = bytes('MEDIA_QUOTA_BYTES', 0);
  c.quotaObjects = int('MEDIA_QUOTA_OBJECTS', 0);
  c.rateLimit = int('MEDIA_RATE_LIMIT', 600);
  c.rateLimitService = int('MEDIA_RATE_LIMIT_SERVICE', 0);
  c.rateLimitPublic = int('MEDIA_RATE_LIMIT_PUBLIC', 0);
  c.rateLimitWindowSeconds = Math.round(seconds('MEDIA_RATE_LIMIT_WINDOW', 60));
  c.redisUrl = get('MEDIA_REDIS_URL');
  c.corsOrigins = list('MEDIA_CORS_ORIGINS').map((o) => o.replace(/\/+$/, ''));
  c.writeDsn = get('DB_POSTGRESQL_WRITE_DSN');
  c.readDsn = get('DB_POSTGRESQL_READ1_DSN');
  c.dbPoolSize = int('DB_POOL_SIZE', 10);
  c.dbPreparedStatements = bool('DB_PREPARED_STATEMENTS', true);
  c.logLevel = get('LOG_LEVEL')?.toLowerCase() ?? 'info';
  c.s3Bucket = get('MEDIA_S3_BUCKET');
  c.s3Region = get('MEDIA_S3_REGION') ?? 'us-east-1';
  c.s3Endpoint = get('MEDIA_S3_ENDPOINT');
  c.s3PublicEndpoint = get('MEDIA_S3_PUBLIC_ENDPOINT');
  c.s3ForcePathStyle = bool('MEDIA_S3_USE_PATH_STYLE', false);
  c.s3KmsKeyId = get('MEDIA_S3_KMS_KEY_ID');
  c.s3AccessKeyId = get('MEDIA_S3_ACCESS_KEY_ID');
  c.s3SecretAccessKey = get('MEDIA_S3_SECRET_ACCESS_KEY');
  c.s3UploadAccessKeyId = get('MEDIA_S3_UPLOAD_ACCESS_KEY_ID');
  c.s3UploadSecretAccessKey = get('MEDIA_S3_UPLOAD_SECRET_ACCESS_KEY');
  c.s3ServeAccessKeyId = get('MEDIA_S3_SERVE_ACCESS_KEY_ID');
  c.s3ServeSecretAccessKey = get('MEDIA_S3_SERVE_SECRET_ACCESS_KEY');
  c.gcsBucket = get('MEDIA_GCS_BUCKET');
  c.gcsKmsKeyName = get('MEDIA_GCS_KMS_KEY_NAME');
  c.gcsApiEndpoint = get('MEDIA_GCS_API_ENDPOINT');
  c.gcsKeyFile = get('MEDIA_GCS_KEY_FILE');
  c.gcsUploadKeyFile = get('MEDIA_GCS_UPLOAD_KEY_FILE');
  c.gcsServeKeyFile = get('MEDIA_GCS_SERVE_KEY_FILE');
  c.gcsResumable = bool('MEDIA_GCS_RESUMABLE', true);

  for (const error of validateSync(c)) {
    const name = VARIABLES[error.property] ?? error.property;
    const unit = unitOf(error.property);
    const shown = /KEY|SECRET|DSN/.test(name) ? '(hidden)' : `${JSON.stringify(withoutUrlCredentials((c as unknown as Record<string, unknown>)[error.property]))}${unit}`;
    // class-validator names the field ("presignTtlSeconds must not be …"): the variable is named
    // already, and a duration or size is stated in the unit it was converted to.
    const rules = Object.values(error.constraints ?? {}).map((rule) => rule.replace(new RegExp(`^${error.property} `), '').replace(/(\d+)$/, `$1${unit}`));
    problems.push(`${name}: ${rules.join('; ')} (got ${shown})`);
  }
  for (const key of c.signingKeys) {
    if (!/^[A-Za-z0-9_-]{1,32}:.{32,}$/.test(key)) problems.push('MEDIA_SIGNING_KEYS: each entry must be <id>:<secret of at least 32 characters>');
  }
  if (!c.embedded && c.serviceKeys.length === 0) {
    problems.push('MEDIA_SERVICE_KEY: required when DB_POSTGRESQL_WRITE_DSN is set (it is generated only for the embedded default)');
  }
  if (c.redisUrl && !/^rediss?:\/\//.test(c.redisUrl)) problems.push('MEDIA_REDIS_URL: expected redis://host:port or rediss://… (value hidden)');
  for (const origin of c.corsOrigins) {
    if (origin !== '*' && !/^https?:\/\/[^/\s]+$/.test(origin)) problems.push(`MEDIA_CORS_ORIGINS: ${JSON.stringify(origin)} is not an origin like https://app.jan.ai`);
    if (origin === '*') problems.push('MEDIA_CORS_ORIGINS: "*" is not allowed; list the origins of the web clients');
  }
  const keys = [...c.serviceKeys, ...c.adminKeys, ...c.apiKeys.map((e) => e.key)];
  if (new Set(keys).size !== keys.length) problems.push('MEDIA_SERVICE_KEY, MEDIA_ADMIN_KEY, MEDIA_API_KEYS: a key may appear only once across them');
  if (!c.embedded && c.storageBackend === 'local' && c.signingKeys.length === 0) {
    problems.push('MEDIA_SIGNING_KEYS: required with the local backend when DB_POSTGRESQL_WRITE_DSN is set');
  }
  if (problems.length) throw new ConfigError([...new Set(problems)]);
  return c;
}

/** The unit a parsed duration or size is held in, for messages: `presignTtlSeconds` → " seconds". */
function unitOf(property: string): string {
  if (property.endsWith('Seconds')) return ' seconds';
  if (property.endsWith('Ms')) return ' ms';
  if (property.endsWith('Bytes')) return ' bytes';
  return '';
}
