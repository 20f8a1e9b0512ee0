import { MediaEvents } from '@jan/domain';
import type { AuditRow } from '@jan/persistence';
import type { TestApp } from './test-app';

export type { AuditRow };

/** Waits for the app's background audit writes, then reads the rows matching `where`. */
export async function auditRows(app: TestApp, where: string, params: unknown[]): Promise<AuditRow[]> {
  const events = app.running.app.get(MediaEvents) as MediaEvents & { flush?: () => Promise<void> };
  await events.flush?.();
  return app.running.database.writer.query(`SELECT * FROM media_api.media_audit_events WHERE ${where} ORDER BY occurred_at, id`, params);
}
