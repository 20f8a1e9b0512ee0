import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import type { MediaObject, SignedUrl } from '@jan/domain';

export class MediaResponseDto {
  @ApiProperty({ example: 'jan_01hqr8v9k2x3f4g5h6j7k8m9n0' }) id!: string;
  @ApiProperty({ example: 'image/png' }) mime!: string;
  @ApiProperty() bytes!: number;
  @ApiProperty({ type: String, nullable: true, description: 'SHA-256 (hex) of the stored bytes' }) sha256!: string | null;
  @ApiProperty({ description: 'True when these bytes were already stored for this owner; the existing id is returned' }) deduped!: boolean;
  @ApiProperty({ description: 'Short-lived URL of the bytes (read by llm-api)' }) url!: string;
  @ApiProperty({ description: 'Same as url (read by the web app)' }) presigned_url!: string;
  @ApiProperty({ description: 'Seconds until the URL expires' }) expires_in!: number;
  @ApiProperty() expires_at!: string;
  @ApiProperty({ description: 'Placeholder to put in chat payloads', example: 'data:image/png;jan_01hqr8v9k2x3f4g5h6j7k8m9n0' }) placeholder!: string;
  @ApiPropertyOptional() status?: string;
}

export class MediaMetadataDto {
  @ApiProperty() id!: string;
  @ApiProperty() mime!: string;
  @ApiProperty() bytes!: number;
  @ApiProperty({ type: String, nullable: true, description: 'SHA-256 (hex) of the stored bytes; null while pending' }) sha256!: string | null;
  @ApiProperty({ enum: ['pending', 'ready'] }) status!: string;
  @ApiProperty() pinned!: boolean;
  @ApiProperty({ type: String, nullable: true }) filename!: string | null;
  @ApiProperty() created_at!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'null when pinned' }) retention_until!: string | null;
}

export function toMediaResponse(media: MediaObject, deduped: boolean, signed: SignedUrl, now: Date): MediaResponseDto {
  return {
    id: media.id,
    mime: media.mimeType,
    bytes: media.bytes,
    sha256: media.sha256,
    deduped,
    url: signed.url,
    presigned_url: signed.url,
    expires_in: Math.max(0, Math.floor((signed.expiresAt.getTime() - now.getTime()) / 1000)),
    expires_at: signed.expiresAt.toISOString(),
    placeholder: `data:${media.mimeType};${media.id}`,
    status: media.status,
  };
}

export function toMetadata(media: MediaObject): MediaMetadataDto {
  return {
    id: media.id,
    mime: media.mimeType,
    bytes: media.bytes,
    sha256: media.sha256,
    status: media.status,
    pinned: media.pinned,
    filename: media.filename,
    created_at: media.createdAt.toISOString(),
    retention_until: media.retentionUntil?.toISOString() ?? null,
  };
}

/** `{id, url, expires_in, expires_at}`: a signed URL as presign and reissue answer it. */
export function toSignedUrlResponse(media: Pick<MediaObject, 'id'>, signed: SignedUrl, now: Date) {
  return {
    id: media.id,
    url: signed.url,
    expires_in: Math.max(0, Math.floor((signed.expiresAt.getTime() - now.getTime()) / 1000)),
    expires_at: signed.expiresAt.toISOString(),
  };
}
