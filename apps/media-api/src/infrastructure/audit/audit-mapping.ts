import { actorOf, type AuditEntryInput, type AuditOutcome, type MediaEvent, type Principal } from '@jan/domain';

/** Codes that mean "not allowed" rather than "went wrong". */
const DENIED_CODES = new Set(['quota_exceeded', 'rate_limited', 'unauthorized']);

/**
 * The audit entries one domain event stands for (before request context is added). Only ids,
 * codes and sizes go in: never URLs, keys, filenames or bytes.
 */
export function auditEntriesFor(event: MediaEvent): AuditEntryInput[] {
  const actor = 'principal' in event && event.principal ? actorOf(event.principal) : { kind: 'system' as const, id: 'retention' };
  const base = { actorKind: actor.kind, actorId: actor.id };
  switch (event.type) {
    case 'ingest.accepted':
      return [
        {
          ...base,
          action: event.source === 'direct_upload' ? 'media.complete' : 'media.ingest',
          mediaId: event.media.id,
          outcome: 'success',
          details: { source: event.source, deduped: event.deduped, bytes: event.media.bytes, mime: event.media.mimeType, owner: event.media.ownerId },
        },
      ];
    case 'ingest.rejected': {
      const outcome: AuditOutcome = DENIED_CODES.has(event.code) ? 'denied' : 'failure';
      const action = event.source !== 'direct_upload' ? 'media.ingest' : event.mediaId ? 'media.complete' : 'media.prepare';
      const details = {
        source: event.source,
        ...actingFor(event.principal),
        // Whom the upload was for: the caller or the user it named, never someone else's data.
        ...(event.owner ? { owner: event.owner } : {}),
        ...(event.reason ? { scanner_reason: event.reason } : {}),
      };
      return [{ ...base, action, mediaId: event.mediaId ?? null, outcome, reasonCode: event.code, details }];
    }
    case 'media.deleted':
      return [{ ...base, action: deleteAction(event.reason), mediaId: event.media.id, outcome: 'success', details: { reason: event.reason, bytes: event.media.bytes, owner: event.media.ownerId } }];
    case 'media.delete_failed':
      return [{ ...base, action: deleteAction(event.reason), mediaId: event.media.id, outcome: 'failure', reasonCode: event.code, details: { reason: event.reason, owner: event.media.ownerId } }];
    case 'media.pinned':
      return [{ ...base, action: event.pinned ? 'media.pin' : 'media.unpin', mediaId: event.media.id, outcome: 'success' }];
    case 'media.reissued':
      return [{ ...base, action: 'media.reissue', mediaId: event.media.id, outcome: 'success', details: { ttl_seconds: event.ttlSeconds } }];
    case 'access.denied': {
      // The caller was told media_not_found; the trail keeps the truth. Only the caller's side is
      // recorded (the user it acts for): never the owner or anything else of the object refused.
      const acting = actingFor(event.principal);
      return event.mediaIds.map((mediaId) => ({
        ...base,
        action: `media.${event.action}`,
        mediaId,
        outcome: 'denied' as const,
        reasonCode: 'forbidden',
        ...(acting.acting_for ? { details: acting } : {}),
      }));
    }
    case 'ingest.mime_mismatch':
      return [];
  }
}

/**
 * The user a service or admin says it acts for (`X-Jan-User-Id`), so the trail tells one user's
 * requests through llm-api from another's: both have the same actor, `service:<key id>`.
 */
function actingFor(principal: Principal): { acting_for?: string } {
  return principal.kind !== 'user' && principal.actingFor ? { acting_for: principal.actingFor } : {};
}

function deleteAction(reason: Extract<MediaEvent, { type: 'media.deleted' }>['reason']): string {
  return reason === 'purge' ? 'media.purge' : reason === 'retention' || reason === 'upload_expired' ? 'media.expire' : 'media.delete';
}
