import { Body, Controller, Get, HttpCode, Param, Post, Query, UseGuards } from '@nestjs/common';
import { RouteConfig } from '@nestjs/platform-fastify';
import { Idempotent } from '../../http/idempotency.interceptor';
import { Writes } from '../../http/in-flight-writes';
import type { RawJsonRouteConfig } from '../../http/raw-json-body';
import { ApiHeader, ApiOkResponse, ApiOperation, ApiQuery, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { AdminMedia, DomainError, type AuditEntry, type MediaObject, type Principal } from '@jan/domain';
import { AdminGuard, CurrentPrincipal } from '../../auth/auth.guard';
import { SignedUrlResponseDto, toMetadata, toSignedUrlResponse } from '../media/dto/media-response.dto';
import { usageBody } from '../usage/usage.controller';
import { UsageResponseDto } from '../usage/usage.dto';
import {
  AdminMediaDetailDto,
  AdminMediaItemDto,
  AdminMediaPageDto,
  AuditEventDto,
  ListMediaQuery,
  PurgeMediaDto,
  PurgeResultDto,
  ReissueDto,
} from './admin.dto';

/**
 * Operator endpoints (the `jan` CLI through @jan/media-client). Admins only: everyone else who is
 * authenticated gets the 404 of an unknown route. The only responses that name storage keys.
 */
@ApiTags('admin')
@ApiSecurity('admin-key')
@ApiSecurity('bearer')
@ApiSecurity('api-key')
@ApiHeader({ name: 'X-Media-Admin-Key', required: false, description: 'Or a JWT with the AUTH_ADMIN_ROLE role' })
@UseGuards(AdminGuard)
@Controller('v1/admin')
export class AdminController {
  constructor(
    private readonly admin: AdminMedia,
  ) {}

  @Get('media')
  @ApiOperation({ summary: 'List objects by id (keyset pagination), optionally of one owner' })
  @ApiOkResponse({ type: AdminMediaPageDto, description: 'One page, ordered by id' })
  async list(@CurrentPrincipal() principal: Principal, @Query() query: ListMediaQuery): Promise<AdminMediaPageDto> {
    const page = await this.admin.list(principal, query);
    return { items: page.items.map(listItem), next_cursor: page.nextCursor };
  }

  @Get('media/:id')
  @ApiOperation({ summary: 'Everything about one object: owner, storage location, hashes, status, retention, recent audit events' })
  @ApiOkResponse({ type: AdminMediaDetailDto, description: 'The object (pending ones included), where it is stored, and its latest audit events' })
  async describe(@CurrentPrincipal() principal: Principal, @Param('id') id: string): Promise<AdminMediaDetailDto> {
    const { media, events } = await this.admin.describe(principal, id);
    return {
      ...listItem(media),
      storage_provider: media.storageProvider,
      storage_key: media.storageKey,
      original_sha256: media.originalSha256,
      updated_at: media.updatedAt.toISOString(),
      upload_expires_at: media.uploadExpiresAt?.toISOString() ?? null,
      claimed_at: media.claimedAt?.toISOString() ?? null,
      events: events.map(auditBody),
    };
  }

  @Post('media/purge')
  @Writes()
  // A retried batch after a lost answer gets the first answer back: re-running it would find the
  // objects gone and list none of them, and a caller's report would miss what was deleted. A dry
  // run changes nothing and may list 10,000 ids: it runs again rather than being kept.
  @Idempotent({ unless: (body) => (body as { dry_run?: unknown } | null)?.dry_run === true })
  @HttpCode(200)
  @ApiOperation({ summary: 'Delete objects matching every given filter (ids, owner, expired); dry_run reports only' })
  @ApiOkResponse({ type: PurgeResultDto, description: 'What was purged (with dry_run: what would be)' })
  async purge(@CurrentPrincipal() principal: Principal, @Body() dto: PurgeMediaDto): Promise<PurgeResultDto> {
    const result = await this.admin.purge(principal, { ids: dto.ids, expired: dto.expired, owner: dto.owner, dryRun: dto.dry_run });
    return { purged: result.purged, count: result.purged.length, dry_run: result.dryRun, truncated: result.truncated, failed: result.failed };
  }

  @Post('media/:id/reissue')
  @Writes()
  // Every field is optional: an empty JSON body is none, as no body is.
  @RouteConfig({ emptyBodyIsNone: true } satisfies RawJsonRouteConfig)
  @HttpCode(200)
  @ApiOperation({ summary: 'A fresh signed URL that bypasses the cache' })
  @ApiOkResponse({ type: SignedUrlResponseDto, description: 'A fresh signature, never from the URL cache' })
  async reissue(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @Body() dto: ReissueDto): Promise<SignedUrlResponseDto> {
    const { media, signed } = await this.admin.reissue(principal, id, dto?.ttl_seconds);
    return toSignedUrlResponse(media, signed);
  }

  @Get('usage')
  @ApiOperation({ summary: "One owner's usage and quota" })
  @ApiQuery({ name: 'owner', required: true, type: String })
  @ApiOkResponse({ type: UsageResponseDto, description: "The owner's usage and quotas" })
  async usage(@CurrentPrincipal() principal: Principal, @Query('owner') owner: string | undefined): Promise<UsageResponseDto> {
    if (typeof owner !== 'string' || !owner.trim()) throw new DomainError('invalid_request', 'owner is required');
    const { usage, limits } = await this.admin.usage(principal, owner.trim());
    return usageBody(owner.trim(), usage, limits);
  }
}

function listItem(media: MediaObject): AdminMediaItemDto {
  return { ...toMetadata(media), owner: media.ownerId };
}

function auditBody(entry: AuditEntry): AuditEventDto {
  return {
    at: entry.occurredAt.toISOString(),
    action: entry.action,
    outcome: entry.outcome,
    actor: `${entry.actorKind}:${entry.actorId}`,
    actor_kind: entry.actorKind,
    actor_id: entry.actorId,
    reason_code: entry.reasonCode,
    request_id: entry.requestId,
    trace_id: entry.traceId,
    client_ip: entry.clientIp,
    details: entry.details,
  };
}
