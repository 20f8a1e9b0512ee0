import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsInt, IsOptional, IsString, MaxLength, Min } from 'class-validator';

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

  @ApiPropertyOptional({ description: 'Exact size in bytes; bound into the upload signature and checked on complete' })
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

  @ApiPropertyOptional({ description: 'Owner, as for POST /v1/media: 1-200 printable ASCII characters', pattern: '^[\\x21-\\x7e]{1,200}$' })
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
