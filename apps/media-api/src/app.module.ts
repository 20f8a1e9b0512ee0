import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DynamicModule, Module } from '@nestjs/common';
import { APP_GUARD, HttpAdapterHost, Reflector } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import {
  AdminMedia,
  AuditRetention,
  AuditTrail,
  Clock,
  ContentScanner,
  DirectUpload,
  FixedQuotaPolicy,
  ImageInspector,
  IngestMedia,
  ManageMedia,
  MediaAccess,
  MediaEvents,
  MediaRepository,
  MediaStorage,
  OpenMedia,
  PresignCache,
  PresignMedia,
  QuotaPolicy,
  RemoteFetcher,
  ResolveMedia,
  SystemClock,
  UploadStaging,
  type MediaPolicy,
} from '@jan/domain';
import { TypeOrmAuditLog, TypeOrmMediaRepository, type Database } from '@jan/persistence';
import type { Redis } from 'ioredis';
import { AdminGuard, AuthGuard } from './auth/auth.guard';
import { PrincipalResolver } from './auth/principal-resolver';
import { MediaConfig } from './config/media-config';
import { Draining } from './http/draining';
import { IdempotencyInterceptor } from './http/idempotency.interceptor';
import { InFlightWrites, InFlightWritesInterceptor } from './http/in-flight-writes';
import { AuditedMediaEvents } from './infrastructure/audit/audited-media-events';
import { RequestContextStore } from './infrastructure/audit/request-context';
import { SharpImageInspector } from './infrastructure/images/sharp-image-inspector';
import { MediaMetrics } from './infrastructure/observability/media-metrics';
import { ObservedMediaEvents } from './infrastructure/observability/observed-media-events';
import { MeasuredContentScanner, contentScannerOf } from './infrastructure/scanning/content-scanner.factory';
import { SafeRemoteFetcher } from './infrastructure/remote-fetch/safe-remote-fetcher';
import { RateLimitGuard, RateLimits } from './infrastructure/rate-limit/rate-limit.guard';
import { InMemoryRateLimiter, RateLimiter, RedisRateLimiter } from './infrastructure/rate-limit/rate-limiter';
import { StaleFileCleanup } from './infrastructure/staging/stale-file-cleanup';
import { TempFileUploadStaging } from './infrastructure/staging/temp-file-upload-staging';
import { createMediaStorage } from './infrastructure/storage/storage.factory';
import { AdminController } from './modules/admin/admin.controller';
import { FilesController } from './modules/files/files.controller';
import { UploadsController } from './modules/files/uploads.controller';
import { HealthController } from './modules/health/health.controller';
import { MediaController } from './modules/media/media.controller';
import { RetentionSweeper } from './modules/media/retention-sweeper';
import { MetricsController } from './modules/metrics/metrics.controller';
import { UsageController } from './modules/usage/usage.controller';

export interface AppDependencies {
  config: MediaConfig;
  database: Database;
  /** Shared with bootstrap, which enters it for every request. */
  requestContext: RequestContextStore;
}

const USER_AGENT = 'JanMediaAPI/0.1 (+https://jan.ai; image ingestion)';

function policyOf(config: MediaConfig): MediaPolicy {
  return {
    maxBytes: config.maxBytes,
    retentionDays: config.retentionDays,
    presignTtlSeconds: config.presignTtlSeconds,
    inline: { enabled: config.resolveInline, maxImageBytes: config.inlineMaxImageBytes, maxRequestBytes: config.inlineMaxRequestBytes },
  };
}

/**
 * Wires adapters to ports and ports to use cases. The database is opened before Nest starts
 * (bootstrap.ts) so that migrations have run by the time any request arrives.
 */
/** Every controller the app serves (infra-manifests.spec.ts checks the probes against their routes). */
export const CONTROLLERS = [HealthController, MediaController, FilesController, UploadsController, MetricsController, UsageController, AdminController];

@Module({})
export class AppModule {
  static register({ config, database, requestContext }: AppDependencies): DynamicModule {
    const policy = policyOf(config);
    const quota = new FixedQuotaPolicy({ maxBytes: config.quotaBytes, maxObjects: config.quotaObjects });
    return {
      module: AppModule,
      imports: [TerminusModule],
      controllers: CONTROLLERS,
      providers: [
        { provide: MediaConfig, useValue: config },
        { provide: Clock, useClass: SystemClock },
        { provide: MediaRepository, useFactory: () => new TypeOrmMediaRepository(database.writer, database.reader) },
        { provide: MediaStorage, useFactory: () => createMediaStorage(config) },
        { provide: UploadStaging, useFactory: () => new TempFileUploadStaging(join(config.dataDir, 'tmp')) },
        {
          provide: ImageInspector,
          useFactory: (staging: UploadStaging) => new SharpImageInspector({ maxPixels: config.maxPixels, reencode: config.reencode, maxOutputBytes: config.maxBytes, staging }),
          inject: [UploadStaging],
        },
        {
          provide: RemoteFetcher,
          useFactory: () =>
            new SafeRemoteFetcher({
              timeoutMs: config.remoteFetchTimeoutMs,
              allowCidrs: config.remoteFetchAllowCidrs,
              userAgent: USER_AGENT,
              extraCaCertificates: config.remoteFetchCaFile ? [readFileSync(config.remoteFetchCaFile, 'utf8')] : undefined,
            }),
        },
        { provide: PresignCache, useFactory: () => new PresignCache(config.presignCacheSize) },
        { provide: ContentScanner, useFactory: (metrics: MediaMetrics) => new MeasuredContentScanner(contentScannerOf(config), metrics), inject: [MediaMetrics] },
        {
          provide: MediaMetrics,
          useFactory: (cache: PresignCache) => {
            const metrics = new MediaMetrics(cache);
            database.onStatement((statement, seconds, ok) => metrics.dbStatementDuration.observe({ statement, outcome: ok ? 'ok' : 'error' }, seconds));
            return metrics;
          },
          inject: [PresignCache],
        },
        { provide: QuotaPolicy, useValue: quota },
        { provide: RequestContextStore, useValue: requestContext },
        { provide: AuditTrail, useFactory: () => new TypeOrmAuditLog(database.writer, database.reader) },
        {
          provide: MediaEvents,
          useFactory: (metrics: MediaMetrics, audit: AuditTrail) => new AuditedMediaEvents(new ObservedMediaEvents(metrics, (principal) => requestContext.contextOf(principal), config.logLevel), audit, requestContext),
          inject: [MediaMetrics, AuditTrail],
        },
        { provide: MediaAccess, useFactory: (r: MediaRepository, e: MediaEvents, c: Clock) => new MediaAccess(r, e, c), inject: [MediaRepository, MediaEvents, Clock] },
        {
          provide: IngestMedia,
          useFactory: (r: MediaRepository, s: MediaStorage, st: UploadStaging, i: ImageInspector, c: Clock, e: MediaEvents, scanner: ContentScanner) =>
            new IngestMedia(r, s, st, i, c, e, policy, quota, scanner),
          inject: [MediaRepository, MediaStorage, UploadStaging, ImageInspector, Clock, MediaEvents, ContentScanner],
        },
        // The read paths complete an old client's direct upload on first use (DirectUpload as their completer).
        { provide: OpenMedia, useFactory: (a: MediaAccess, s: MediaStorage, d: DirectUpload) => new OpenMedia(a, s, d), inject: [MediaAccess, MediaStorage, DirectUpload] },
        {
          provide: PresignMedia,
          useFactory: (a: MediaAccess, s: MediaStorage, cache: PresignCache, c: Clock, d: DirectUpload) => new PresignMedia(a, s, cache, c, policy, d),
          inject: [MediaAccess, MediaStorage, PresignCache, Clock, DirectUpload],
        },
        {
          provide: ResolveMedia,
          useFactory: (r: MediaRepository, s: MediaStorage, p: PresignMedia, e: MediaEvents, c: Clock, d: DirectUpload) => new ResolveMedia(r, s, p, e, policy, c, d),
          inject: [MediaRepository, MediaStorage, PresignMedia, MediaEvents, Clock, DirectUpload],
        },
        {
          provide: ManageMedia,
          useFactory: (a: MediaAccess, r: MediaRepository, s: MediaStorage, cache: PresignCache, c: Clock, e: MediaEvents) =>
            new ManageMedia(a, r, s, cache, c, e, policy),
          inject: [MediaAccess, MediaRepository, MediaStorage, PresignCache, Clock, MediaEvents],
        },
        {
          provide: DirectUpload,
          useFactory: (a: MediaAccess, r: MediaRepository, s: MediaStorage, st: UploadStaging, i: ImageInspector, c: Clock, e: MediaEvents, scanner: ContentScanner) =>
            new DirectUpload(a, r, s, st, i, c, e, { ...policy, uploadTtlSeconds: config.uploadTtlSeconds }, quota, scanner),
          inject: [MediaAccess, MediaRepository, MediaStorage, UploadStaging, ImageInspector, Clock, MediaEvents, ContentScanner],
        },
        {
          provide: StaleFileCleanup,
          useFactory: (s: MediaStorage, st: UploadStaging, c: Clock, host: HttpAdapterHost) =>
            new StaleFileCleanup(s, st, c, { intervalSeconds: config.retentionSweepIntervalSeconds, requestTimeoutMs: config.requestTimeoutMs }, host),
          inject: [MediaStorage, UploadStaging, Clock, HttpAdapterHost],
        },
        {
          provide: RetentionSweeper,
          useFactory: (m: ManageMedia, t: AuditTrail, c: Clock) =>
            new RetentionSweeper(m, config.retentionSweepIntervalSeconds, new AuditRetention(t, c, config.auditRetentionDays)),
          inject: [ManageMedia, AuditTrail, Clock],
        },
        {
          provide: AdminMedia,
          useFactory: (a: MediaAccess, r: MediaRepository, m: ManageMedia, p: PresignMedia, t: AuditTrail, c: Clock, e: MediaEvents) =>
            new AdminMedia(a, r, m, p, t, quota, c, e, policy),
          inject: [MediaAccess, MediaRepository, ManageMedia, PresignMedia, AuditTrail, Clock, MediaEvents],
        },
        { provide: PrincipalResolver, useFactory: () => principalResolverOf(config) },
        {
          provide: RateLimiter,
          useFactory: async () => (config.redisUrl ? new RedisRateLimiter(await redisOf(config.redisUrl)) : new InMemoryRateLimiter()),
        },
        AdminGuard,
        // Guards run in this order: who is calling, then how often they may.
        { provide: APP_GUARD, useClass: AuthGuard },
        {
          provide: RateLimits,
          useFactory: (limiter: RateLimiter) =>
            new RateLimits(limiter, {
              perUser: config.rateLimit,
              perService: config.rateLimitService,
              windowSeconds: config.rateLimitWindowSeconds,
              perAddress: config.rateLimitPublic,
            }),
          inject: [RateLimiter],
        },
        { provide: APP_GUARD, useFactory: (reflector: Reflector, limits: RateLimits) => new RateLimitGuard(reflector, limits), inject: [Reflector, RateLimits] },
        IdempotencyInterceptor,
        InFlightWrites,
        InFlightWritesInterceptor,
        Draining,
      ],
    };
  }
}

/** jose (and ioredis below) load only when configured: neither is needed on the default path. */
async function principalResolverOf(config: MediaConfig): Promise<PrincipalResolver> {
  const { JwtVerifier } = config.authEnabled ? await import('./auth/jwt-verifier.js') : { JwtVerifier: null };
  const jwt =
    JwtVerifier && config.authIssuer && config.authJwksUrl
      ? new JwtVerifier({
          issuer: config.authIssuer,
          jwksUrl: config.authJwksUrl,
          audience: config.authAudience,
          adminRole: config.authAdminRole,
          clockSkewSeconds: config.authClockSkewSeconds,
          jwksCooldownMs: config.authJwksCooldownMs,
        })
      : null;
  return PrincipalResolver.fromConfig({ serviceKeys: config.serviceKeys, adminKeys: config.adminKeys, apiKeys: config.apiKeys, jwt });
}

/** Fails fast per command instead of queueing while Redis is away (the limiter then lets requests through). */
async function redisOf(url: string): Promise<Redis> {
  const { Redis } = await import('ioredis');
  return new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 500, connectTimeout: 2_000, lazyConnect: false });
}
