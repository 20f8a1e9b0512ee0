import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PresignCache } from '@jan/domain';

/** Prometheus metrics of one app instance (own registry, so tests can boot several apps). */
export class MediaMetrics {
  readonly registry = new Registry();

  readonly ingested = new Counter({
    name: 'media_ingest_total',
    help: 'Accepted ingests by source and whether they were deduplicated',
    labelNames: ['source', 'deduped'] as const,
    registers: [this.registry],
  });
  readonly ingestedBytes = new Counter({
    name: 'media_ingest_bytes_total',
    help: 'Bytes received by accepted ingests',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });
  readonly rejected = new Counter({
    name: 'media_ingest_rejected_total',
    help: 'Rejected ingests by stable error code',
    labelNames: ['source', 'code'] as const,
    registers: [this.registry],
  });
  readonly mimeMismatch = new Counter({
    name: 'media_ingest_mime_mismatch_total',
    help: 'Uploads whose declared type differed from the sniffed one',
    labelNames: ['declared', 'sniffed'] as const,
    registers: [this.registry],
  });
  readonly deleted = new Counter({
    name: 'media_deleted_total',
    help: 'Deleted objects by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly deleteFailed = new Counter({
    name: 'media_delete_failed_total',
    help: 'Deletions whose bytes the storage refused to remove (the row stays claimed and is retried), by reason and code',
    labelNames: ['reason', 'code'] as const,
    registers: [this.registry],
  });
  readonly denied = new Counter({
    name: 'media_access_denied_total',
    help: 'Refused access to objects of another owner, by action',
    labelNames: ['action'] as const,
    registers: [this.registry],
  });
  readonly scanDuration = new Histogram({
    name: 'media_scan_duration_seconds',
    help: 'Calls to the malware/DLP scanner by scanner and outcome (clean, rejected, unavailable; skipped: no scanner configured)',
    labelNames: ['scanner', 'outcome'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly dbStatementDuration = new Histogram({
    name: 'media_db_statement_duration_seconds',
    help: 'Request-path database statements (prepared by name) by statement and outcome (ok, error)',
    labelNames: ['statement', 'outcome'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'media_http_request_duration_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  constructor(presignCache: PresignCache) {
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'media_presign_cache_hits',
      help: 'Presign cache hits since start',
      registers: [this.registry],
      collect() {
        this.set(presignCache.hits);
      },
    });
    new Gauge({
      name: 'media_presign_cache_misses',
      help: 'Presign cache misses since start',
      registers: [this.registry],
      collect() {
        this.set(presignCache.misses);
      },
    });
  }
}
