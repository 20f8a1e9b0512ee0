import { FixedClock, InMemoryAuditTrail } from '../../testing/fakes';
import { AuditRetention } from './audit-retention';

const DAY = 86_400_000;

function trailWithAges(clock: FixedClock, agesInDays: number[]) {
  const trail = new InMemoryAuditTrail();
  for (const [i, age] of agesInDays.entries()) {
    void trail.append({
      occurredAt: new Date(clock.now().getTime() - age * DAY),
      actorKind: 'system',
      actorId: 'test',
      action: 'media.ingest',
      mediaId: `m${i}`,
      outcome: 'success',
    });
  }
  return trail;
}

describe('AuditRetention', () => {
  it('keeps everything when the retention is 0 (the default)', async () => {
    const clock = new FixedClock();
    const trail = trailWithAges(clock, [400, 40, 1]);
    expect(await new AuditRetention(trail, clock, 0).prune()).toBe(0);
    expect(trail.entries).toHaveLength(3);
  });

  it('deletes entries older than the retention and keeps the rest', async () => {
    const clock = new FixedClock();
    const trail = trailWithAges(clock, [400, 31, 30.5, 29, 1]);
    expect(await new AuditRetention(trail, clock, 30).prune()).toBe(3);
    expect(trail.entries.map((e) => e.mediaId)).toEqual(['m3', 'm4']);
  });

  it('stops after its batches, oldest first, and the next run goes on', async () => {
    const clock = new FixedClock();
    const trail = trailWithAges(clock, [50, 60, 70, 80, 90, 100, 1]);
    const retention = new AuditRetention(trail, clock, 30, 2, 2);
    expect(await retention.prune()).toBe(4);
    expect(trail.entries.map((e) => e.mediaId)).toEqual(['m0', 'm1', 'm6']);
    expect(await retention.prune()).toBe(2);
    expect(trail.entries.map((e) => e.mediaId)).toEqual(['m6']);
    expect(await retention.prune()).toBe(0);
  });
});
