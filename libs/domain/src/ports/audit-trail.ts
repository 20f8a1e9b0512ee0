/** Who acted: the principal kinds, plus the service itself (retention) and nobody. */
export type AuditActorKind = 'user' | 'service' | 'admin' | 'system' | 'anonymous';

/** `success`; `denied` (authorization, quota); `failure` (the client's mistake or ours). */
export type AuditOutcome = 'success' | 'denied' | 'failure';

/** One entry to append to the audit trail. */
export interface AuditEntryInput {
  /** Defaults to the store's clock. */
  occurredAt?: Date;
  actorKind: AuditActorKind;
  actorId: string;
  /** e.g. `media.ingest`, `media.read`, `media.delete`, `media.pin`. */
  action: string;
  mediaId?: string | null;
  outcome: AuditOutcome;
  /** A `DomainError` code when the outcome is not a success. */
  reasonCode?: string | null;
  requestId?: string | null;
  traceId?: string | null;
  clientIp?: string | null;
  /** Safe extra facts: never secrets, keys or signed URLs. */
  details?: Record<string, unknown> | null;
}

/** An appended entry as read back. `id` is a bigint, kept as a string. */
export interface AuditEntry {
  id: string;
  occurredAt: Date;
  actorKind: AuditActorKind;
  actorId: string;
  action: string;
  mediaId: string | null;
  outcome: AuditOutcome;
  reasonCode: string | null;
  requestId: string | null;
  traceId: string | null;
  clientIp: string | null;
  details: Record<string, unknown> | null;
}

/**
 * The append-only record of who did what to which object (`media_audit_events`). Appends may
 * fail (database down); callers that must not fail a request catch and log.
 */
export abstract class AuditTrail {
  abstract append(entry: AuditEntryInput): Promise<AuditEntry>;

  /**
   * Appends several entries, in one write where the store can (one statement and one
   * commit instead of one per entry). This default appends them one by one.
   */
  async appendMany(entries: readonly AuditEntryInput[]): Promise<void> {
    for (const entry of entries) await this.append(entry);
  }

  /** The latest entries about one object, newest first. */
  abstract recent(mediaId: string, limit?: number): Promise<AuditEntry[]>;

  /**
   * Deletes up to `limit` entries that occurred before `before`, oldest first, and returns how
   * many went. The trail is otherwise append-only: this is its retention, nothing else deletes.
   */
  abstract prune(before: Date, limit: number): Promise<number>;
}
