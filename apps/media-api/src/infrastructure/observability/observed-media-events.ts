import { Logger } from '@nestjs/common';
import { MediaEvents, actorOf, isAllowedMimeType, type MediaEvent, type Principal } from '@jan/domain';
import type { MediaMetrics } from './media-metrics';

/** pino's level numbers. */
const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

/** Counts every event in Prometheus and writes one structured log line per event. */
export class ObservedMediaEvents extends MediaEvents {
  private readonly logger = new Logger('media');

  /** Whether info / warn lines are written at the configured LOG_LEVEL: if not, none is built. */
  private readonly infoEnabled: boolean;
  private readonly warnEnabled: boolean;

  constructor(
    private readonly metrics: MediaMetrics,
    /** The current request's id and W3C trace id, so event lines correlate with llm-api. */
    private readonly requestContext: (principal: Principal | null) => { requestId: string; traceId: string | null } | undefined = () => undefined,
    logLevel = 'info',
  ) {
    super();
    const threshold = LEVELS[logLevel] ?? LEVELS.info!;
    this.infoEnabled = LEVELS.info! >= threshold;
    this.warnEnabled = LEVELS.warn! >= threshold;
  }

  emit(event: MediaEvent): void {
    try {
      this.count(event);
      this.log(event);
    } catch {
      // Observability must never fail a request.
    }
  }

  private count(event: MediaEvent): void {
    switch (event.type) {
      case 'ingest.accepted':
        this.metrics.ingested.inc({ source: event.source, deduped: String(event.deduped) });
        this.metrics.ingestedBytes.inc({ source: event.source }, event.receivedBytes);
        break;
      case 'ingest.rejected':
        this.metrics.rejected.inc({ source: event.source, code: event.code });
        break;
      case 'ingest.mime_mismatch':
        // The declared type is whatever the client wrote: only the image types stored are label
        // values, so made-up types cannot grow the series without bound (the log line keeps it).
        this.metrics.mimeMismatch.inc({ declared: isAllowedMimeType(event.declared) ? event.declared : 'other', sniffed: event.sniffed });
        break;
      case 'media.deleted':
        this.metrics.deleted.inc({ reason: event.reason });
        break;
      case 'media.delete_failed':
        this.metrics.deleteFailed.inc({ reason: event.reason, code: event.code });
        break;
      case 'access.denied':
        this.metrics.denied.inc({ action: event.action });
        break;
      case 'media.pinned':
        break;
    }
  }

  private log(event: MediaEvent): void {
    const warning = event.type === 'ingest.mime_mismatch' || event.type === 'access.denied' || event.type === 'media.delete_failed' || (event.type === 'ingest.rejected' && !!event.reason);
    if (!(warning ? this.warnEnabled : this.infoEnabled)) return;
    const actor = 'principal' in event && event.principal ? actorOf(event.principal) : { kind: 'system', id: 'retention' };
    const request = this.requestContext(event.principal);
    const base = {
      event: event.type,
      actor_kind: actor.kind,
      actor_id: actor.id,
      ...(request ? { request_id: request.requestId } : {}),
      ...(request?.traceId ? { trace_id: request.traceId } : {}),
    };
    switch (event.type) {
      case 'ingest.accepted':
        this.logger.log({ ...base, media_id: event.media.id, source: event.source, deduped: event.deduped, bytes: event.media.bytes, mime: event.media.mimeType });
        break;
      case 'ingest.rejected':
        if (event.reason) this.logger.warn({ ...base, source: event.source, code: event.code, scanner_reason: event.reason });
        else this.logger.log({ ...base, source: event.source, code: event.code });
        break;
      case 'ingest.mime_mismatch':
        this.logger.warn({ ...base, source: event.source, declared: event.declared, sniffed: event.sniffed });
        break;
      case 'media.deleted':
        this.logger.log({ ...base, media_id: event.media.id, reason: event.reason });
        break;
      case 'media.delete_failed':
        this.logger.warn({ ...base, media_id: event.media.id, reason: event.reason, code: event.code });
        break;
      case 'media.pinned':
        this.logger.log({ ...base, media_id: event.media.id, pinned: event.pinned });
        break;
      case 'access.denied':
        this.logger.warn({ ...base, action: event.action, media_ids: event.mediaIds });
        break;
    }
  }
}
