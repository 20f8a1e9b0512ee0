import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { ArrayMaxSize, IsArray, IsBoolean, IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';

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
  @ApiPropertyOptional({ description: 'Lifetime of the URL in seconds (1 to 604800); default MEDIA_PRESIGN_TTL' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(604_800)
  ttl_seconds?: number;
}

export class ListMediaQuery {
  @IsOptional()
  @IsString()
  @MaxLength(200)
  owner?: string;

  @IsOptional()
  @IsString()
  @MaxLength(64)
  cursor?: string;

  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(200)
  limit?: number;
}
