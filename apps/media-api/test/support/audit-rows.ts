import { MediaEvents } from '@jan/domain';
import type { TestApp } from './test-app';

export interface AuditRow {
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

/** Waits for the app's background audit writes, then reads the rows matching `where`. */
export async function auditRows(app: TestApp, where: string, params: unknown[]): Promise<AuditRow[]> {
  const events = app.running.app.get(MediaEvents) as MediaEvents & { flush?: () => Promise<void> };
  await events.flush?.();
  return app.running.database.writer.query(`SELECT * FROM media_api.media_audit_events WHERE ${where} ORDER BY occurred_at, id`, params);
}
