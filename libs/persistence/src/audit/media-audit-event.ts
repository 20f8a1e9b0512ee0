import type { AuditActorKind, AuditEntry, AuditEntryInput, AuditOutcome } from '@jan/domain';

/** The domain's audit types under the names this package has always exported. */
export type { AuditActorKind, AuditOutcome };
export type MediaAuditEventInput = AuditEntryInput;
export type MediaAuditEvent = AuditEntry;
