import type { Command } from 'commander';
import type { AdminMediaDescription, AuditEvent } from '@jan/media-client';
import { formatBool, formatBytes, formatDate, formatValue, renderFields, renderTable } from '../format';
import type { CommandContext } from '../command-context';
import { understood } from '../exit-codes';
import { mediaIdArgument } from '../arguments';

/** Fields printed in this order; anything else the service adds is listed after them. */
const KNOWN = new Set([
  'id', 'owner', 'owner_id', 'mime', 'mime_type', 'bytes', 'sha256', 'original_sha256', 'storage_provider', 'storage_key',
  'status', 'pinned', 'retention_until', 'created_at', 'updated_at', 'filename', 'upload_expires_at', 'claimed_at', 'events',
]);

export function registerDescribeCommand(media: Command, context: CommandContext): void {
  media
    .command('describe')
    .description('Everything about one object: owner, size, type, hashes, storage provider and key, status, retention, pin, recent audit events.')
    .argument('<id>', 'media id (jan_…)')
    .action(async (id: string, _options: unknown, command: Command) => {
      const mediaId = mediaIdArgument(id);
      const description = understood(await context.client(command).admin.describe(mediaId), (d) => typeof d.id === 'string', 'the describe endpoint');
      context.output(command, description, () => renderDescription(description));
    });
}

export function renderDescription(d: AdminMediaDescription): string {
  const owner = d.owner ?? d['owner_id'];
  const mime = d.mime ?? d['mime_type'];
  const fields: Array<[string, string]> = [
    ['id', d.id],
    ['owner', formatValue(owner)],
    ['type', formatValue(mime)],
    ['size', typeof d.bytes === 'number' ? `${formatBytes(d.bytes)} (${d.bytes} bytes)` : '-'],
    ['sha256', formatValue(d.sha256)],
  ];
  if (d.original_sha256 && d.original_sha256 !== d.sha256) fields.push(['original sha256', d.original_sha256]);
  fields.push(
    ['storage provider', formatValue(d.storage_provider)],
    ['storage key', formatValue(d.storage_key)],
    ['status', formatValue(d.status)],
    ['pinned', formatBool(d.pinned)],
    ['retention until', d.pinned ? `${formatDate(d.retention_until)} (pinned: kept)` : formatDate(d.retention_until)],
    ['created', formatDate(d.created_at)],
  );
  if (d['updated_at'] !== undefined) fields.push(['updated', formatDate(d['updated_at'])]);
  if (d.filename) fields.push(['filename', d.filename]);
  if (d['upload_expires_at']) fields.push(['upload expires', formatDate(d['upload_expires_at'])]);
  if (d['claimed_at']) fields.push(['being deleted since', formatDate(d['claimed_at'])]);
  for (const [key, value] of Object.entries(d)) {
    if (!KNOWN.has(key) && (value === null || typeof value !== 'object')) fields.push([key.replace(/_/g, ' '), formatValue(value)]);
  }

  const events = d.events ?? [];
  const eventsText = events.length
    ? renderTable(events, [
        { header: 'TIME', value: (e) => formatDate(eventField(e, 'occurred_at', 'at', 'time')) },
        { header: 'ACTOR', value: (e) => actorOf(e) },
        { header: 'ACTION', value: (e) => formatValue(e.action) },
        { header: 'OUTCOME', value: (e) => formatValue(e.outcome) },
        { header: 'REASON', value: (e) => formatValue(eventField(e, 'reason_code', 'reason')) },
        { header: 'REQUEST', value: (e) => formatValue(e['request_id']) },
      ])
    : '(none)\n';
  return `${renderFields(fields)}\nRecent audit events (newest first):\n${eventsText}`;
}

function eventField(event: AuditEvent, ...names: string[]): unknown {
  for (const name of names) if (event[name] !== undefined && event[name] !== null) return event[name];
  return undefined;
}

function actorOf(event: AuditEvent): string {
  const kind = eventField(event, 'actor_kind');
  const id = eventField(event, 'actor_id');
  if (kind !== undefined || id !== undefined) return [kind, id].filter((v) => v !== undefined && v !== '').join(':');
  return formatValue(event.actor);
}
