import type { Command } from 'commander';
import { UnexpectedResponseError, type AdminMediaListItem } from '@jan/media-client';
import { unexpectedAnswer } from '../exit-codes';
import { formatBool, formatBytes, formatDate, formatValue, renderTable, shellCommand } from '../format';
import { ownerOption, positiveInt } from '../arguments';
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
      const owner = ownerOption(options.owner);
      const admin = context.client(command).admin;
      const params = { owner, limit: options.limit, cursor: options.cursor };
      let items: AdminMediaListItem[];
      let nextCursor: string | null;
      try {
        if (options.all) {
          items = [];
          for await (const page of admin.pages(params)) items.push(...page.items);
          nextCursor = null;
        } else {
          const page = await admin.list(params);
          items = page.items;
          nextCursor = page.nextCursor;
        }
      } catch (error) {
        // Another JSON service behind --url: never "(no objects)" made up from its answer.
        if (error instanceof UnexpectedResponseError) throw unexpectedAnswer('the list endpoint');
        throw error;
      }
      context.output(command, { items, next_cursor: nextCursor }, () => renderList(items));
      if (nextCursor) {
        const next = nextPageCommand({ url: context.globals(command).url, owner, limit: options.limit, cursor: nextCursor });
        context.note(command, `more objects: ${next}  (or --all)`);
      }
    });
}

/**
 * The command that prints the next page, ready to paste into a shell: the same URL flag, owner and
 * page size, quoted where a shell would change them. Credentials are never repeated.
 */
export function nextPageCommand(page: { url?: string; owner?: string; limit?: number; cursor: string }): string {
  const args = ['jan', 'media', 'ls'];
  if (page.url !== undefined) args.push('--url', page.url);
  if (page.owner !== undefined) args.push('--owner', page.owner);
  if (page.limit !== undefined) args.push('--limit', String(page.limit));
  args.push('--cursor', page.cursor);
  return shellCommand(args);
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
