import { ApiProperty, ApiPropertyOptional, type ApiPropertyOptions, type SchemaObject } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsBoolean, IsIn, IsOptional } from 'class-validator';
import { DomainError, readJsonText, type PlaceholderScan } from '@jan/domain';
import { RawJsonBody } from '../../../http/raw-json-body';

/** Any JSON value: an object, an array, a string, a number, a boolean or null. */
const ANY_JSON: Pick<SchemaObject, 'oneOf' | 'nullable'> = {
  oneOf: [{ type: 'object' }, { type: 'array', items: {} }, { type: 'string' }, { type: 'number' }, { type: 'boolean' }],
  nullable: true,
};

export class ResolveMediaDto {
  @ApiPropertyOptional({ ...ANY_JSON, description: 'Any JSON; every `data:<mime>;jan_<id>` or `data:<mime>;base64,jan_<id>` inside a string is replaced (with any `=`/`==` padding after the id); one whose id is malformed counts as not found' })
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

const UNRESOLVED: ApiPropertyOptions = {
  type: [String],
  description: 'Only with `keep_unresolved: true`, and only when some ids did not resolve (missing, pending, someone else\'s, malformed): those ids; their placeholders are left as they were',
};

/** `{"payload": …}`: the payload sent, placeholders replaced. */
export class ResolvePayloadResponseDto {
  @ApiProperty({ ...ANY_JSON, description: 'The payload as sent (its own bytes: see docs/api.md), each placeholder replaced by a URL, or a data URL in inline mode' })
  payload!: unknown;

  @ApiPropertyOptional(UNRESOLVED) unresolved?: string[];
}

export class ResolvedMediaDto {
  @ApiProperty({ example: 'jan_01hqr8v9k2x3f4g5h6j7k8m9n0' }) id!: string;
  @ApiProperty({ description: 'Short-lived URL (read by the web app); a `data:` URL in inline mode' }) presigned_url!: string;
  @ApiProperty({ description: 'Same as presigned_url' }) url!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'null in inline mode (a data URL does not expire)' }) expires_at!: string | null;
}

/** `{"media": [...]}`: the `ids` form. */
export class ResolveIdsResponseDto {
  @ApiProperty({ type: [ResolvedMediaDto], description: 'One entry per distinct id that resolved, in the order sent' }) media!: ResolvedMediaDto[];
  @ApiPropertyOptional(UNRESOLVED) unresolved?: string[];
}

const BOTH_FORMS = 'send either `payload` or `ids`, not both';

/** The small fields (`ids`, `mode`, `keep_unresolved`) by the same rules as the decorators above. */
export function parseResolveFields(fields: Record<string, unknown>): ResolveMediaDto {
  const { ids, mode, keep_unresolved } = fields;
  if (ids !== undefined && (!Array.isArray(ids) || ids.length > 1000)) throw new DomainError('invalid_request', 'ids must be an array of at most 1000 ids');
  if (ids?.some((id) => typeof id !== 'string')) throw new DomainError('invalid_request', 'ids must be strings');
  if (mode !== undefined && mode !== 'url' && mode !== 'inline') throw new DomainError('invalid_request', 'mode must be url or inline');
  if (keep_unresolved !== undefined && typeof keep_unresolved !== 'boolean') throw new DomainError('invalid_request', 'keep_unresolved must be a boolean');
  return { ids: ids as unknown[] | undefined, mode, keep_unresolved };
}

/** A resolve request read from its JSON text: the small fields parsed, the payload only scanned. */
export interface ResolveRequest {
  dto: ResolveMediaDto;
  /** The placeholders in `payload`'s own bytes; null when the body has no `payload`. */
  payload: PlaceholderScan<Uint8Array[]> | null;
}

/**
 * Reads the raw JSON body of `POST /v1/media/resolve`. The chat payload is never parsed into
 * objects or serialized again: it is validated and scanned in its bytes, and the response is
 * those bytes with the placeholders swapped (numbers, escapes and spacing survive exactly).
 */
export function readResolveBody(body: unknown): ResolveRequest {
  if (!(body instanceof RawJsonBody)) throw new DomainError('invalid_request', 'body must be a JSON object (Content-Type: application/json)');
  const text = readJsonText(body.bytes);
  if (!text.members) throw new DomainError('invalid_request', 'body must be a JSON object');
  // Only the small fields are parsed; anything else in the body is ignored, as the pipe's whitelist did.
  const fields: Record<string, unknown> = {};
  for (const key of ['ids', 'mode', 'keep_unresolved']) {
    const span = text.members.get(key);
    if (span) fields[key] = text.valueAt(span);
  }
  const dto = parseResolveFields(fields);
  const payload = text.members.get('payload');
  // One form or the other: answering the ids and dropping the payload would lose it silently.
  if (payload && text.members.has('ids')) throw new DomainError('invalid_request', BOTH_FORMS);
  return { dto, payload: payload ? text.placeholders(payload) : null };
}
