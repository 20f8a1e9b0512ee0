import { ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsBoolean, IsIn, IsOptional } from 'class-validator';
import { DomainError } from '@jan/domain';

export class ResolveMediaDto {
  @ApiPropertyOptional({ description: 'Any JSON; every `data:<mime>;jan_<id>` or `data:<mime>;base64,jan_<id>` inside a string is replaced' })
  @IsOptional()
  payload?: unknown;

  @ApiPropertyOptional({ type: [String], description: 'Ids to presign instead of a payload' })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(1000)
  ids?: unknown[];

  @ApiPropertyOptional({ enum: ['url', 'inline'], default: 'url' })
  @IsOptional()
  @IsIn(['url', 'inline'])
  mode?: 'url' | 'inline';

  @ApiPropertyOptional({ default: false, description: 'Leave placeholders that cannot be resolved untouched instead of failing with 404' })
  @IsOptional()
  @IsBoolean()
  keep_unresolved?: boolean;
}

/** The same rules as the decorators above, without copying `payload`. */
export function parseResolveBody(body: unknown): ResolveMediaDto {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new DomainError('invalid_request', 'body must be a JSON object');
  const { payload, ids, mode, keep_unresolved } = body as Record<string, unknown>;
  if (ids !== undefined && (!Array.isArray(ids) || ids.length > 1000)) throw new DomainError('invalid_request', 'ids must be an array of at most 1000 ids');
  if (mode !== undefined && mode !== 'url' && mode !== 'inline') throw new DomainError('invalid_request', 'mode must be url or inline');
  if (keep_unresolved !== undefined && typeof keep_unresolved !== 'boolean') throw new DomainError('invalid_request', 'keep_unresolved must be a boolean');
  const dto: ResolveMediaDto = { ids: ids as unknown[] | undefined, mode, keep_unresolved };
  if ('payload' in (body as object)) dto.payload = payload;
  return dto;
}
