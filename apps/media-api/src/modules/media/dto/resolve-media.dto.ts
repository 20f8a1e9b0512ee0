import { ApiPropertyOptional } from '@nestjs/swagger';
import { ArrayMaxSize, IsArray, IsBoolean, IsIn, IsOptional } from 'class-validator';

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
