import { ApiProperty, ApiPropertyOptional, type SchemaObject } from '@nestjs/swagger';
import { IsIn, IsInt, IsOptional, IsString, MaxLength, Min } from 'class-validator';
import { USER_ID_PATTERN, USER_ID_RULE } from '@jan/domain';

export class PrepareUploadDto {
  @ApiPropertyOptional({ example: 'image/png', description: 'Type of the image that will be uploaded' })
  @IsOptional()
  @IsString()
  @MaxLength(100)
  mime_type?: string;

  @ApiPropertyOptional({ description: 'Alias of mime_type' })
  @IsOptional()
  @IsString()
  @MaxLength(100)
  content_type?: string;

  @ApiPropertyOptional({ type: 'integer', minimum: 1, description: 'Exact size in bytes; bound into the upload signature and checked on complete' })
  @IsOptional()
  @IsInt()
  @Min(1)
  bytes?: number;

  @ApiPropertyOptional({ description: 'Hex SHA-256 of the bytes; checked on complete' })
  @IsOptional()
  @IsString()
  sha256?: string;

  @ApiPropertyOptional({ enum: ['PUT', 'POST'], default: 'PUT', description: 'POST returns a presigned POST (url + fields) on S3' })
  @IsOptional()
  @IsIn(['PUT', 'POST'])
  method?: 'PUT' | 'POST';

  @ApiPropertyOptional({ description: 'Owner, as for POST /v1/media: ' + USER_ID_RULE, pattern: USER_ID_PATTERN })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  user_id?: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @MaxLength(1024)
  filename?: string;
}

const STRING_MAP = { type: 'object', additionalProperties: { type: 'string' } satisfies SchemaObject } as const;

export class PrepareUploadResponseDto {
  @ApiProperty({ example: 'jan_01hqr8v9k2x3f4g5h6j7k8m9n0', description: 'Reserved in status `pending` until complete' }) id!: string;
  @ApiProperty({ description: 'Absolute URL to send the bytes to, with `method`' }) upload_url!: string;
  @ApiProperty({ enum: ['PUT', 'POST'], description: 'Follow this rather than the method asked for: the local backend answers PUT to a POST request' }) method!: 'PUT' | 'POST';
  @ApiProperty({ ...STRING_MAP, description: 'Headers the upload must carry: for PUT the content-type, plus the signed length, encryption and checksum headers where the backend needs them; empty for POST' })
  headers!: Record<string, string>;
  @ApiPropertyOptional({ ...STRING_MAP, description: 'Form fields a POST upload sends before the file field; only for `method: POST`' })
  fields?: Record<string, string>;
  @ApiProperty({ example: 'image/png' }) mime_type!: string;
  @ApiProperty({ type: 'integer', description: 'Seconds until the upload URL (and the reservation) expire' }) expires_in!: number;
  @ApiProperty({
    format: 'date-time',
    description: 'When the upload URL (or form policy) stops being accepted, on a whole second: never later than it really works, up to 1 s before now + expires_in',
  })
  expires_at!: string;
  @ApiProperty({ description: 'Absolute URL of `POST /v1/media/{id}/complete`' }) complete_url!: string;
}
