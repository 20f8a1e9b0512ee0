import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { ArrayMaxSize, IsArray, IsBoolean, IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import { MediaMetadataDto } from '../media/dto/media-response.dto';

export class PurgeMediaDto {
  @ApiPropertyOptional({ type: [String], description: 'Only these ids' })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(1000)
  @IsString({ each: true })
  @MaxLength(64, { each: true })
  ids?: string[];

  @ApiPropertyOptional({ description: 'Only objects past retention (unpinned) and abandoned uploads' })
  @IsOptional()
  @IsBoolean()
  expired?: boolean;

  @ApiPropertyOptional({ description: 'Only objects of this owner' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  owner?: string;

  @ApiPropertyOptional({ default: false, description: 'Report what would be purged without deleting' })
  @IsOptional()
  @IsBoolean()
  dry_run?: boolean;
}

export class ReissueDto {
  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: 604_800, description: 'Lifetime of the URL in seconds; default MEDIA_PRESIGN_TTL' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(604_800)
  ttl_seconds?: number;
}

export class ListMediaQuery {
  @ApiPropertyOptional({ description: 'Only objects of this owner' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  owner?: string;

  @ApiPropertyOptional({ description: '`next_cursor` of the previous page' })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  cursor?: string;

  @ApiPropertyOptional({ type: 'integer', minimum: 1, maximum: 200, default: 50 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(200)
  limit?: number;
}

/** Metadata, plus the owner: one item of the admin list. */
export class AdminMediaItemDto extends MediaMetadataDto {
  @ApiProperty({ example: 'u1' }) owner!: string;
}

export class AdminMediaPageDto {
  @ApiProperty({ type: [AdminMediaItemDto], description: 'Ordered by id' }) items!: AdminMediaItemDto[];
  @ApiProperty({ type: String, nullable: true, description: 'Pass back as `cursor` for the next page; null on the last page' }) next_cursor!: string | null;
}

/** One audit trail entry about an object. */
export class AuditEventDto {
  @ApiProperty({ format: 'date-time' }) at!: string;
  @ApiProperty({ example: 'media.read' }) action!: string;
  @ApiProperty({ enum: ['success', 'denied', 'failure'] }) outcome!: string;
  @ApiProperty({ description: '`<actor_kind>:<actor_id>`', example: 'user:u1' }) actor!: string;
  @ApiProperty({ enum: ['user', 'service', 'admin', 'system', 'anonymous'] }) actor_kind!: string;
  @ApiProperty() actor_id!: string;
  @ApiProperty({ type: String, nullable: true, description: 'The error code when the outcome is not a success' }) reason_code!: string | null;
  @ApiProperty({ type: String, nullable: true }) request_id!: string | null;
  @ApiProperty({ type: String, nullable: true }) trace_id!: string | null;
  @ApiProperty({ type: String, nullable: true }) client_ip!: string | null;
  @ApiProperty({ type: 'object', additionalProperties: true, nullable: true, description: 'Safe extra facts' }) details!: Record<string, unknown> | null;
}

export class AdminMediaDetailDto extends AdminMediaItemDto {
  @ApiProperty({ enum: ['local', 's3', 'gcs'] }) storage_provider!: string;
  @ApiProperty({ example: 'images/jan_01hqr8v9k2x3f4g5h6j7k8m9n0.png' }) storage_key!: string;
  @ApiProperty({ type: String, nullable: true, description: 'SHA-256 of the bytes as received, when re-encoding changed them' }) original_sha256!: string | null;
  @ApiProperty({ format: 'date-time' }) updated_at!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'Deadline of a pending direct upload' }) upload_expires_at!: string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'When it was claimed for deletion: set while a deletion whose removal failed waits for its retry (see events); null otherwise' })
  claimed_at!: string | null;
  @ApiProperty({ type: [AuditEventDto], description: 'The 20 latest audit entries, newest first' }) events!: AuditEventDto[];
}

export class PurgeFailureDto {
  @ApiProperty({ example: 'jan_01hqr8v9k2x3f4g5h6j7k8m9n0' }) id!: string;
  @ApiProperty({ example: 'storage_unavailable', description: 'The stable error code of the failed delete' }) code!: string;
}

export class PurgeResultDto {
  @ApiProperty({ type: [String], description: 'Ids deleted (or, with dry_run, that would be)' }) purged!: string[];
  @ApiProperty({ type: 'integer', description: 'Length of purged' }) count!: number;
  @ApiProperty() dry_run!: boolean;
  @ApiProperty({ description: 'True when the per-call limit (10 000) was reached and more match: call again' }) truncated!: boolean;
  @ApiProperty({ type: [PurgeFailureDto], description: 'Objects the storage refused to delete: kept for now (the retention sweep retries them), the others were deleted' })
  failed!: PurgeFailureDto[];
}
