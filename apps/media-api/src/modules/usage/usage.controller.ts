import { Controller, Get } from '@nestjs/common';
import { ApiHeader, ApiOkResponse, ApiOperation, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { MediaRepository, QuotaPolicy, resolveOwner, type OwnerUsage, type Principal, type QuotaLimits } from '@jan/domain';
import { CurrentPrincipal } from '../../auth/auth.guard';
import { UsageResponseDto } from './usage.dto';

/** What the caller stores against their quota. Quotas of 0 (unlimited) are answered as null. */
@ApiTags('usage')
@ApiSecurity('service-key')
@ApiSecurity('bearer')
@ApiSecurity('api-key')
@ApiSecurity('admin-key')
@ApiHeader({ name: 'X-Jan-User-Id', required: false, description: 'The end user a service asks about' })
@Controller('v1/usage')
export class UsageController {
  constructor(
    private readonly repository: MediaRepository,
    private readonly quota: QuotaPolicy,
  ) {}

  @Get()
  @ApiOperation({ summary: "The caller's usage (a service's: of the user in X-Jan-User-Id, or its own)" })
  @ApiOkResponse({ type: UsageResponseDto, description: 'Usage and quotas' })
  async usage(@CurrentPrincipal() principal: Principal): Promise<UsageResponseDto> {
    const owner = resolveOwner(principal, undefined);
    return usageBody(owner, await this.repository.usage(owner), this.quota.limitsFor(owner));
  }
}

export function usageBody(owner: string, usage: OwnerUsage, limits: QuotaLimits): UsageResponseDto {
  return {
    owner,
    objects: usage.objects,
    bytes: usage.bytes,
    quota_objects: limits.maxObjects > 0 ? limits.maxObjects : null,
    quota_bytes: limits.maxBytes > 0 ? limits.maxBytes : null,
  };
}
