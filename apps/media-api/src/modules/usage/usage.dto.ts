import { ApiProperty } from '@nestjs/swagger';

/** What an owner stores against their quota. Quotas of 0 (unlimited) are answered as null. */
export class UsageResponseDto {
  @ApiProperty({ example: 'u1' }) owner!: string;
  @ApiProperty({ type: 'integer', description: 'Objects stored, pending reservations included' }) objects!: number;
  @ApiProperty({ type: 'integer', description: 'Bytes stored (a pending reservation counts its declared size)' }) bytes!: number;
  @ApiProperty({ type: 'integer', nullable: true, description: 'The owner\'s object quota (MEDIA_QUOTA_OBJECTS); null when unlimited' }) quota_objects!: number | null;
  @ApiProperty({ type: 'integer', nullable: true, description: 'The owner\'s byte quota (MEDIA_QUOTA_BYTES); null when unlimited' }) quota_bytes!: number | null;
}
