import { AuditTrail } from '@jan/domain';
import type { DataSource } from 'typeorm';
import { answering } from '../database-unavailable';
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
 * Appends to and reads `media_api.media_audit_events`. There is deliberately no update or
 * delete here; the table refuses updates too. Several fields come from the client (request id,
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
    const [row]: AuditRow[] = await this.writer.query(`INSERT INTO ${TABLE} (${COLUMNS}) VALUES ${valuesRow(0)} RETURNING *`, parameters(event));
    return toEvent(row);
  }

  /** One multi-row INSERT per batch of up to 500 entries (one statement, one commit). */
  override async appendMany(events: readonly MediaAuditEventInput[]): Promise<void> {
    for (let start = 0; start < events.length; start += MAX_ROWS_PER_INSERT) {
      const batch = events.slice(start, start + MAX_ROWS_PER_INSERT);
      const rows = batch.map((_, i) => valuesRow(i * PARAMETERS_PER_ROW));
      await this.writer.query(`INSERT INTO ${TABLE} (${COLUMNS}) VALUES ${rows.join(', ')}`, batch.flatMap(parameters));
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
const COLUMNS = 'occurred_at, actor_kind, actor_id, action, media_id, outcome, reason_code, request_id, trace_id, client_ip, details';
const PARAMETERS_PER_ROW = 11;
/** 500 rows × 11 parameters stays far below PostgreSQL's 65,535 bind parameters. */
const MAX_ROWS_PER_INSERT = 500;

/** `($n+1 … $n+11)` with the casts each column needs; a missing time means the database's now(). */
function valuesRow(offset: number): string {
  const p = (i: number) => `$${offset + i}`;
  return `(coalesce(${p(1)}::timestamptz, now()), ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}, ${p(6)}, ${p(7)}, ${p(8)}, ${p(9)}, ${p(10)}, ${p(11)}::jsonb)`;
}

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
