import { AuditTrail } from '@jan/domain';
import type { DataSource } from 'typeorm';
import { answering } from '../database-unavailable';
import { runStatement, statement } from '../repositories/statements';
import type { AuditActorKind, AuditOutcome, MediaAuditEvent, MediaAuditEventInput } from './media-audit-event';

/** A `media_api.media_audit_events` row as PostgreSQL returns it. */
export interface AuditRow {
  id: string;
  occurred_at: Date;
  actor_kind: string;
  actor_id: string;
  action: string;
  media_id: string | null;
  outcome: string;
  reason_code: string | null;
  request_id: string | null;
  trace_id: string | null;
  client_ip: string | null;
  details: Record<string, unknown> | null;
}

/**
 * Appends to and reads `media_api.media_audit_events`. There is deliberately no update (the table
 * refuses updates too); the only delete is `prune`, of entries past the audit retention
 * (`MEDIA_AUDIT_RETENTION_DAYS`, `AuditRetention`). Several fields come from the client (request id,
 * address), so values are cut to their column's width rather than failing the request they record.
 */
export class TypeOrmAuditLog extends AuditTrail {
  constructor(
    private readonly writer: DataSource,
    private readonly reader: DataSource = writer,
  ) {
    super();
  }

  async append(event: MediaAuditEventInput): Promise<MediaAuditEvent> {
    const [row]: AuditRow[] = await this.writer.query(`INSERT INTO ${TABLE} (${COLUMNS}) VALUES ${VALUES_ROW} RETURNING *`, parameters(event));
    return toEvent(row);
  }

  /**
   * One statement (and one commit) per batch of up to 500 entries: the columns go as arrays, so the
   * statement's text is the same for every batch and is prepared once per connection.
   */
  override async appendMany(events: readonly MediaAuditEventInput[]): Promise<void> {
    for (let start = 0; start < events.length; start += MAX_ROWS_PER_INSERT) {
      const rows = events.slice(start, start + MAX_ROWS_PER_INSERT).map(parameters);
      await runStatement(this.writer, APPEND_MANY, COLUMN_NAMES.map((_, column) => rows.map((row) => row[column])));
    }
  }

  /** The latest entries about one object, newest first. */
  async recent(mediaId: string, limit = 50): Promise<MediaAuditEvent[]> {
    const rows: AuditRow[] = await answering(
      this.reader.query(
        `SELECT * FROM ${TABLE}
          WHERE media_id = $1
          ORDER BY occurred_at DESC, id DESC
          LIMIT $2`,
        [mediaId, Math.max(0, Math.min(limit, 1000))],
      ),
    );
    return rows.map(toEvent);
  }

  /**
   * Oldest first through the `occurred_at` index, so a batch reads only its own rows. Replicas
   * pruning at once skip each other's locked rows instead of waiting on them.
   */
  async prune(before: Date, limit: number): Promise<number> {
    if (limit <= 0) return 0;
    const [, deleted] = (await answering(
      this.writer.query(
        `DELETE FROM ${TABLE}
          WHERE id IN (SELECT id FROM ${TABLE} WHERE occurred_at < $1 ORDER BY occurred_at LIMIT $2 FOR UPDATE SKIP LOCKED)`,
        [before, limit],
      ),
    )) as [unknown, number];
    return deleted;
  }
}

const TABLE = 'media_api.media_audit_events';
const COLUMN_NAMES = ['occurred_at', 'actor_kind', 'actor_id', 'action', 'media_id', 'outcome', 'reason_code', 'request_id', 'trace_id', 'client_ip', 'details'];
const COLUMNS = COLUMN_NAMES.join(', ');
/** Keeps one statement's size bounded; a longer batch takes several. */
const MAX_ROWS_PER_INSERT = 500;
/** A batch of entries, one array per column; a missing time means the database's now(). */
const APPEND_MANY = statement(
  'audit_append',
  `INSERT INTO ${TABLE} (${COLUMNS})
   SELECT coalesce(e.occurred_at, now()), ${COLUMN_NAMES.slice(1).map((c) => `e.${c}`).join(', ')}
     FROM unnest($1::timestamptz[], $2::varchar[], $3::varchar[], $4::varchar[], $5::varchar[], $6::varchar[],
                 $7::varchar[], $8::varchar[], $9::varchar[], $10::varchar[], $11::jsonb[]) AS e(${COLUMNS})`,
);

/** One entry's values with the casts each column needs; a missing time means the database's now(). */
const VALUES_ROW = '(coalesce($1::timestamptz, now()), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb)';

function parameters(event: MediaAuditEventInput): unknown[] {
  return [
    event.occurredAt ?? null,
    cut(event.actorKind, 16),
    cut(event.actorId, 200),
    cut(event.action, 40),
    cut(event.mediaId, 40),
    cut(event.outcome, 16),
    cut(event.reasonCode, 64),
    cut(event.requestId, 100),
    cut(event.traceId, 64),
    cut(event.clientIp, 64),
    event.details == null ? null : JSON.stringify(event.details),
  ];
}

function cut<T extends string | null | undefined>(value: T, max: number): string | null {
  if (value === undefined || value === null) return null;
  return value.length > max ? value.slice(0, max) : value;
}

function toEvent(row: AuditRow): MediaAuditEvent {
  return {
    id: String(row.id),
    occurredAt: row.occurred_at,
    actorKind: row.actor_kind as AuditActorKind,
    actorId: row.actor_id,
    action: row.action,
    mediaId: row.media_id,
    outcome: row.outcome as AuditOutcome,
    reasonCode: row.reason_code,
    requestId: row.request_id,
    traceId: row.trace_id,
    clientIp: row.client_ip,
    details: row.details,
  };
}
