import 'reflect-metadata';

export { openDatabase, MIGRATION_LOCK_KEY, type Database, type OpenDatabaseOptions } from './database';
export { DirectoryInUseError } from './directory-lock';
export { startEmbeddedServer, type EmbeddedServer } from './embedded/embedded-server';
export { DatabaseLogger, type QueryListener, type StatementListener } from './database-logger';
export { MediaObjectOrmEntity } from './entities/media-object.orm-entity';
export { MediaObjectMapper, type MediaObjectRow } from './mappers/media-object.mapper';
export { MIGRATIONS, MediaObjects1764000000000, MediaAuditEvents1764000000001, OwnerUsage1764000000002, OwnerListingIndex1764000000003, ShardedOwnerUsage1764000000004, ClaimMarker1764000000005, UsageTriggerOnChange1764000000006 } from './migrations';
export { TypeOrmMediaRepository } from './repositories/typeorm-media.repository';
export { TypeOrmAuditLog, type AuditRow } from './audit/typeorm-audit-log';
export type { AuditActorKind, AuditOutcome, MediaAuditEvent, MediaAuditEventInput } from './audit/media-audit-event';
