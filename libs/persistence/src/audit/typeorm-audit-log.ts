import { AuditTrail } from '@jan/domain';
import type { DataSource } from 'typeorm';
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
    const [row]: AuditRow[] = await this.writer.query(
      `INSERT INTO media_api.media_audit_events
         (occurred_at, actor_kind, actor_id, action, media_id, outcome, reason_code, request_id, trace_id, client_ip, details)
       VALUES (coalesce($1::timestamptz, now()), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb)
       RETURNING *`,
      [
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
      ],
    );
    return toEvent(row);
  }

  /** The latest entries about one object, newest first. */
  async recent(mediaId: string, limit = 50): Promise<MediaAuditEvent[]> {
    const rows: AuditRow[] = await this.reader.query(
      `SELECT * FROM media_api.media_audit_events
        WHERE media_id = $1
        ORDER BY occurred_at DESC, id DESC
        LIMIT $2`,
      [mediaId, Math.max(0, Math.min(limit, 1000))],
    );
    return rows.map(toEvent);
  }
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
