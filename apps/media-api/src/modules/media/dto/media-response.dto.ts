import { ApiProperty } from '@nestjs/swagger';
import type { MediaObject, PresignedUrl } from '@jan/domain';

const ID_EXAMPLE = 'jan_01hqr8v9k2x3f4g5h6j7k8m9n0';

export class MediaResponseDto {
  @ApiProperty({ example: ID_EXAMPLE }) id!: string;
  @ApiProperty({ example: 'image/png' }) mime!: string;
  @ApiProperty({ type: 'integer', description: 'Size of the stored bytes' }) bytes!: number;
  @ApiProperty({ type: String, nullable: true, description: 'SHA-256 (hex) of the stored bytes' }) sha256!: string | null;
  @ApiProperty({ description: 'True when these bytes were already stored for this owner; the existing id is returned' }) deduped!: boolean;
  @ApiProperty({ description: 'Short-lived URL of the bytes (read by llm-api)' }) url!: string;
  @ApiProperty({ description: 'Same as url (read by the web app)' }) presigned_url!: string;
  @ApiProperty({ type: 'integer', description: 'Seconds until the URL expires: the TTL for a freshly signed URL, the whole seconds left (rounded up) for a cached one' }) expires_in!: number;
  @ApiProperty({ format: 'date-time' }) expires_at!: string;
  @ApiProperty({ description: 'Placeholder to put in chat payloads', example: `data:image/png;${ID_EXAMPLE}` }) placeholder!: string;
  @ApiProperty({ enum: ['ready'], description: 'Always `ready`: ingest and complete answer once the object can be served' }) status!: string;
}

export class MediaMetadataDto {
  @ApiProperty({ example: ID_EXAMPLE }) id!: string;
  @ApiProperty({ example: 'image/png' }) mime!: string;
  @ApiProperty({ type: 'integer', description: 'Size of the stored bytes; while pending, the declared size (0 when none was declared)' }) bytes!: number;
  @ApiProperty({ type: String, nullable: true, description: 'SHA-256 (hex) of the stored bytes; while pending, the declared one (null when none was declared)' }) sha256!: string | null;
  @ApiProperty({ enum: ['pending', 'ready'] }) status!: string;
  @ApiProperty() pinned!: boolean;
  @ApiProperty({ type: String, nullable: true }) filename!: string | null;
  @ApiProperty({ format: 'date-time' }) created_at!: string;
  @ApiProperty({
    type: String,
    format: 'date-time',
    nullable: true,
    description: 'When retention deletes the object. null while pinned, and while a direct upload is pending: complete starts the clock (unpinning a pending upload starts it early); an upload never completed goes at its reservation deadline',
  })
  retention_until!: string | null;
}

/** `{id, url, expires_in, expires_at}`: presign and admin reissue. */
export class SignedUrlResponseDto {
  @ApiProperty({ example: ID_EXAMPLE }) id!: string;
  @ApiProperty({ description: 'Short-lived URL of the bytes' }) url!: string;
  @ApiProperty({ type: 'integer', description: 'Seconds until the URL expires: the TTL for a freshly signed URL, the whole seconds left (rounded up) for a cached one' }) expires_in!: number;
  @ApiProperty({ format: 'date-time' }) expires_at!: string;
}

/** `GET /v1/media/{id}` when MEDIA_PROXY_DOWNLOAD=false: where to fetch the bytes instead. */
export class MediaUrlResponseDto {
  @ApiProperty({ description: 'Short-lived URL of the bytes' }) url!: string;
  @ApiProperty({ format: 'date-time' }) expires_at!: string;
}

export function toMediaResponse(media: MediaObject, deduped: boolean, signed: PresignedUrl): MediaResponseDto {
  return {
    id: media.id,
    mime: media.mimeType,
    bytes: media.bytes,
    sha256: media.sha256,
    deduped,
    url: signed.url,
    presigned_url: signed.url,
    expires_in: signed.expiresInSeconds,
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

export function toSignedUrlResponse(media: Pick<MediaObject, 'id'>, signed: PresignedUrl): SignedUrlResponseDto {
  return {
    id: media.id,
    url: signed.url,
    expires_in: signed.expiresInSeconds,
    expires_at: signed.expiresAt.toISOString(),
  };
}
