import { join } from 'node:path';
import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_INTERCEPTOR } from '@nestjs/core';
import { TerminusModule } from '@nestjs/terminus';
import {
  Clock,
  DirectUpload,
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
  RemoteFetcher,
  ResolveMedia,
  SystemClock,
  UploadStaging,
  type MediaPolicy,
} from '@jan/domain';
import { TypeOrmMediaRepository, type Database } from '@jan/persistence';
import { AuthGuard } from './auth/auth.guard';
import { PrincipalResolver } from './auth/principal-resolver';
import { ServiceKeys } from './auth/service-keys';
import { MediaConfig } from './config/media-config';
import { DomainExceptionFilter } from './http/domain-exception.filter';
import { IdempotencyInterceptor } from './http/idempotency.interceptor';
import { SharpImageInspector } from './infrastructure/images/sharp-image-inspector';
import { MediaMetrics } from './infrastructure/observability/media-metrics';
import { ObservedMediaEvents } from './infrastructure/observability/observed-media-events';
import { SafeRemoteFetcher } from './infrastructure/remote-fetch/safe-remote-fetcher';
import { TempFileUploadStaging } from './infrastructure/staging/temp-file-upload-staging';
import { createMediaStorage } from './infrastructure/storage/storage.factory';
import { FilesController } from './modules/files/files.controller';
import { UploadsController } from './modules/files/uploads.controller';
import { HealthController } from './modules/health/health.controller';
import { MediaController } from './modules/media/media.controller';
import { RetentionSweeper } from './modules/media/retention-sweeper';
import { MetricsController } from './modules/metrics/metrics.controller';

export interface AppDependencies {
  config: MediaConfig;
  database: Database;
}

export const USER_AGENT = 'JanMediaAPI/0.1 (+https://jan.ai; image ingestion)';

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
@Module({})
export class AppModule {
  static register({ config, database }: AppDependencies): DynamicModule {
    const policy = policyOf(config);
    return {
      module: AppModule,
      imports: [TerminusModule],
      controllers: [HealthController, MediaController, FilesController, UploadsController, MetricsController],
      providers: [
        { provide: MediaConfig, useValue: config },
        { provide: Clock, useClass: SystemClock },
        { provide: MediaRepository, useFactory: () => new TypeOrmMediaRepository(database.writer, database.reader) },
        { provide: MediaStorage, useFactory: () => createMediaStorage(config) },
        { provide: UploadStaging, useFactory: () => new TempFileUploadStaging(join(config.dataDir, 'tmp')) },
        {
          provide: ImageInspector,
          useFactory: (staging: UploadStaging) => new SharpImageInspector({ maxPixels: config.maxPixels, reencode: config.reencode, staging }),
          inject: [UploadStaging],
        },
        {
          provide: RemoteFetcher,
          useFactory: () =>
            new SafeRemoteFetcher({ timeoutMs: config.remoteFetchTimeoutMs, allowCidrs: config.remoteFetchAllowCidrs, userAgent: USER_AGENT }),
        },
        { provide: PresignCache, useFactory: () => new PresignCache(config.presignCacheSize) },
        { provide: MediaMetrics, useFactory: (cache: PresignCache) => new MediaMetrics(cache), inject: [PresignCache] },
        { provide: MediaEvents, useFactory: (metrics: MediaMetrics) => new ObservedMediaEvents(metrics), inject: [MediaMetrics] },
        { provide: MediaAccess, useFactory: (r: MediaRepository, e: MediaEvents) => new MediaAccess(r, e), inject: [MediaRepository, MediaEvents] },
        {
          provide: IngestMedia,
          useFactory: (r: MediaRepository, s: MediaStorage, st: UploadStaging, i: ImageInspector, c: Clock, e: MediaEvents) =>
            new IngestMedia(r, s, st, i, c, e, policy),
          inject: [MediaRepository, MediaStorage, UploadStaging, ImageInspector, Clock, MediaEvents],
        },
        { provide: OpenMedia, useFactory: (a: MediaAccess, s: MediaStorage) => new OpenMedia(a, s), inject: [MediaAccess, MediaStorage] },
        {
          provide: PresignMedia,
          useFactory: (a: MediaAccess, s: MediaStorage, cache: PresignCache, c: Clock) => new PresignMedia(a, s, cache, c, policy),
          inject: [MediaAccess, MediaStorage, PresignCache, Clock],
        },
        {
          provide: ResolveMedia,
          useFactory: (r: MediaRepository, s: MediaStorage, p: PresignMedia, e: MediaEvents) => new ResolveMedia(r, s, p, e, policy),
          inject: [MediaRepository, MediaStorage, PresignMedia, MediaEvents],
        },
        {
          provide: ManageMedia,
          useFactory: (a: MediaAccess, r: MediaRepository, s: MediaStorage, cache: PresignCache, c: Clock, e: MediaEvents) =>
            new ManageMedia(a, r, s, cache, c, e, policy),
          inject: [MediaAccess, MediaRepository, MediaStorage, PresignCache, Clock, MediaEvents],
        },
        {
          provide: DirectUpload,
          useFactory: (a: MediaAccess, r: MediaRepository, s: MediaStorage, st: UploadStaging, i: ImageInspector, c: Clock, e: MediaEvents) =>
            new DirectUpload(a, r, s, st, i, c, e, { ...policy, uploadTtlSeconds: config.uploadTtlSeconds }),
          inject: [MediaAccess, MediaRepository, MediaStorage, UploadStaging, ImageInspector, Clock, MediaEvents],
        },
        {
          provide: RetentionSweeper,
          useFactory: (m: ManageMedia) => new RetentionSweeper(m, config.retentionSweepIntervalSeconds),
          inject: [ManageMedia],
        },
        { provide: ServiceKeys, useFactory: () => new ServiceKeys(config.serviceKeys) },
        { provide: PrincipalResolver, useFactory: (keys: ServiceKeys) => new PrincipalResolver(keys), inject: [ServiceKeys] },
        { provide: APP_GUARD, useClass: AuthGuard },
        { provide: APP_FILTER, useClass: DomainExceptionFilter },
        { provide: APP_INTERCEPTOR, useClass: IdempotencyInterceptor },
      ],
    };
  }
}
