import type { Command } from 'commander';
import type { AdminMediaListItem } from '@jan/media-client';
import { formatBool, formatBytes, formatDate, formatValue, renderTable } from '../format';
import { positiveInt } from '../arguments';
import type { CommandContext } from '../command-context';

/** The service's largest page. */
export const MAX_PAGE = 200;

interface LsOptions {
  owner?: string;
  limit?: number;
  cursor?: string;
  all?: boolean;
}

export function registerLsCommand(media: Command, context: CommandContext): void {
  media
    .command('ls')
    .description('List objects, oldest first, one page at a time (or every page with --all).')
    .option('--owner <user>', 'only objects of this owner')
    .option('--limit <n>', `page size (1..${MAX_PAGE}, default 50)`, positiveInt('--limit', MAX_PAGE))
    .option('--cursor <cursor>', 'start after this cursor (the next_cursor of the previous page)')
    .option('--all', 'follow next_cursor through every page')
    .action(async (options: LsOptions, command: Command) => {
      const admin = context.client(command).admin;
      const params = { owner: options.owner, limit: options.limit, cursor: options.cursor };
      let items: AdminMediaListItem[];
      let nextCursor: string | null;
      if (options.all) {
        items = [];
        for await (const page of admin.pages(params)) items.push(...page.items);
        nextCursor = null;
      } else {
        const page = await admin.list(params);
        items = page.items;
        nextCursor = page.nextCursor;
      }
      context.output(command, { items, next_cursor: nextCursor }, () => renderList(items));
      if (nextCursor) {
        const owner = options.owner ? ` --owner ${options.owner}` : '';
        context.note(command, `more objects: jan media ls${owner} --cursor ${nextCursor}  (or --all)`);
      }
    });
}

export function renderList(items: readonly AdminMediaListItem[]): string {
  if (items.length === 0) return '(no objects)\n';
  return renderTable(items, [
    { header: 'ID', value: (m) => m.id },
    { header: 'OWNER', value: (m) => formatValue(m.owner ?? m['owner_id']) },
    { header: 'TYPE', value: (m) => formatValue(m.mime ?? m['mime_type']) },
    { header: 'SIZE', value: (m) => formatBytes(m.bytes), align: 'right' },
    { header: 'STATUS', value: (m) => formatValue(m.status) },
    { header: 'PINNED', value: (m) => formatBool(m.pinned) },
    { header: 'CREATED', value: (m) => formatDate(m.created_at) },
    { header: 'RETENTION', value: (m) => formatDate(m.retention_until) },
  ]);
}
