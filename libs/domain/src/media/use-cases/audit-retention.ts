import { AuditTrail } from '../../ports/audit-trail';
import { Clock } from '../../ports/clock';

const DAY_MS = 86_400_000;

/**
 * Keeps the audit trail to `retentionDays` (0 keeps it forever): each run deletes entries older
 * than that, in batches, at most `batchSize × maxBatches` per run so that a first run over a large
 * backlog spreads over several sweeps instead of holding the database.
 */
export class AuditRetention {
  constructor(
    private readonly trail: AuditTrail,
    private readonly clock: Clock,
    readonly retentionDays: number,
    private readonly batchSize = 5_000,
    private readonly maxBatches = 20,
  ) {}

  /** Entries deleted in this run. */
  async prune(): Promise<number> {
    if (this.retentionDays <= 0) return 0;
    const before = new Date(this.clock.now().getTime() - this.retentionDays * DAY_MS);
    let pruned = 0;
    for (let batch = 0; batch < this.maxBatches; batch++) {
      const deleted = await this.trail.prune(before, this.batchSize);
      pruned += deleted;
      if (deleted < this.batchSize) break;
    }
    return pruned;
  }
}
