import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsDefined, IsObject, IsOptional, IsString, MaxLength, ValidateNested } from 'class-validator';

export class MediaSourceDto {
  @ApiProperty({ description: '`data_url` or `remote_url` (case-insensitive; aliases datauri, dataurl, remoteuri, remote)', example: 'data_url' })
  @IsString()
  type!: string;

  @ApiPropertyOptional({ description: 'For data_url: `data:<mime>;base64,<data>`' })
  @IsOptional()
  @IsString()
  data_url?: string;

  @ApiPropertyOptional({ description: 'For remote_url: an http(s) URL the service fetches' })
  @IsOptional()
  @IsString()
  @MaxLength(8192)
  url?: string;
}

export class IngestMediaDto {
  @ApiProperty({ type: MediaSourceDto })
  @IsDefined()
  @IsObject()
  @ValidateNested()
  @Type(() => MediaSourceDto)
  source!: MediaSourceDto;

  @ApiPropertyOptional({ example: 'cat.png' })
  @IsOptional()
  @IsString()
  @MaxLength(1024)
  filename?: string;

  @ApiPropertyOptional({ description: 'Owner, honoured only for service callers (must match X-Jan-User-Id when both are sent)' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  user_id?: string;
}
