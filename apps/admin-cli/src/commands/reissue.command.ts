import type { Command } from 'commander';
import type { AdminReissueResult } from '@jan/media-client';
import { formatDate, renderFields } from '../format';
import { mediaIdArgument, positiveInt } from '../arguments';
import type { CommandContext } from '../command-context';
import { understood } from '../exit-codes';

/** The service's own cap (S3 and GCS V4 signatures live at most 7 days). */
export const MAX_TTL_SECONDS = 7 * 86_400;

export function registerReissueCommand(media: Command, context: CommandContext): void {
  media
    .command('reissue')
    .description('Sign a fresh URL for one object (never served from the presign cache), e.g. after a link leaked or expired.')
    .argument('<id>', 'media id (jan_…)')
    .option('--ttl <seconds>', `lifetime of the URL in seconds (1..${MAX_TTL_SECONDS}; default: the service's presign TTL)`, positiveInt('--ttl', MAX_TTL_SECONDS))
    .action(async (id: string, options: { ttl?: number }, command: Command) => {
      const mediaId = mediaIdArgument(id);
      const result = understood(
        await context.client(command).admin.reissue(mediaId, { ttlSeconds: options.ttl }),
        (r) => typeof r.url === 'string',
        'the reissue endpoint',
      );
      context.output(command, result, () => renderReissue(result));
    });
}

export function renderReissue(result: AdminReissueResult): string {
  return renderFields([
    ['id', result.id],
    ['url', result.url],
    ['expires', formatDate(result.expires_at)],
  ]);
}
