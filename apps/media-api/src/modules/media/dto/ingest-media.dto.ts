import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { DomainError, USER_ID_PATTERN, USER_ID_RULE } from '@jan/domain';
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

  @ApiPropertyOptional({ description: 'Owner, honoured only for service callers (must match X-Jan-User-Id when both are sent); ' + USER_ID_RULE, pattern: USER_ID_PATTERN })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  user_id?: string;
}

/**
 * The rules of the decorators above, checked by hand for `POST /v1/media`: the global validation
 * pipe's class-transformer copy and class-validator walk were ~5% of a data-URL ingest. Unknown
 * properties are dropped, as the pipe's `whitelist` does. The decorators still describe the body
 * in the OpenAPI document.
 */
export function parseIngestBody(body: unknown): IngestMediaDto {
  if (!isRecord(body)) throw invalid('body must be a JSON object');
  const source = body.source;
  if (!isRecord(source)) throw invalid('source must be an object');
  const dto: IngestMediaDto = {
    source: {
      type: requiredString(source.type, 'source.type'),
      data_url: optionalString(source.data_url, 'source.data_url'),
      url: optionalString(source.url, 'source.url', 8192),
    },
    filename: optionalString(body.filename, 'filename', 1024),
    user_id: optionalString(body.user_id, 'user_id', 200),
  };
  return dto;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function invalid(message: string): DomainError {
  return new DomainError('invalid_request', message);
}

function requiredString(value: unknown, name: string): string {
  if (typeof value !== 'string') throw invalid(`${name} must be a string`);
  return value;
}

function optionalString(value: unknown, name: string, maxLength = Infinity): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalid(`${name} must be a string`);
  if (value.length > maxLength) throw invalid(`${name} must be shorter than or equal to ${maxLength} characters`);
  return value;
}
