import type { Command } from 'commander';
import type { Usage } from '@jan/media-client';
import { formatBytes, renderFields } from '../format';
import type { CommandContext } from '../command-context';
import { understood } from '../exit-codes';
import { ownerOption } from '../arguments';

export function registerUsageCommand(media: Command, context: CommandContext): void {
  media
    .command('usage')
    .description("One owner's stored objects and bytes against their quota.")
    .usage('--owner <user> [options]')
    .requiredOption('--owner <user>', 'owner (user id) to report on (required)')
    .action(async (options: { owner: string }, command: Command) => {
      const owner = ownerOption(options.owner)!;
      const usage = understood(
        await context.client(command).admin.usage({ owner }),
        (u) => typeof u.objects === 'number' && typeof u.bytes === 'number',
        'the usage endpoint',
      );
      context.output(command, usage, () => renderUsage(owner, usage));
    });
}

export function renderUsage(owner: string, usage: Usage): string {
  return renderFields([
    ['owner', typeof usage['owner'] === 'string' ? usage['owner'] : owner],
    ['objects', `${usage.objects}${quotaSuffix(usage.objects, usage.quota_objects, String)}`],
    ['bytes', `${formatBytes(usage.bytes)} (${usage.bytes} bytes)${quotaSuffix(usage.bytes, usage.quota_bytes, formatBytes)}`],
  ]);
}

/** Quotas of 0 or null mean "unlimited" on the service. */
function quotaSuffix(used: number, quota: number | null | undefined, format: (n: number) => string): string {
  if (!quota) return ' of unlimited';
  const percent = Math.round((used / quota) * 1000) / 10;
  return ` of ${format(quota)} (${percent}%)`;
}
