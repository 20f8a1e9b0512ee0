import { setTimeout as sleep } from 'node:timers/promises';
import { NoopMediaEvents, type AuditEntryInput, type MediaEvent } from '@jan/domain';
import { InMemoryAuditTrail, readyMedia } from '@jan/domain/testing';
import { AuditedMediaEvents, type AuditBatchingOptions } from './audited-media-events';
import { RequestContextStore } from './request-context';

/** Records each `appendMany` call; while `hold` is set, writes wait for it. */
class RecordingTrail extends InMemoryAuditTrail {
  readonly batches: number[] = [];
  inFlight = 0;
  maxInFlight = 0;
  hold: Promise<void> | null = null;

  override async appendMany(entries: readonly AuditEntryInput[]): Promise<void> {
    this.batches.push(entries.length);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.hold) await this.hold;
      await super.appendMany(entries);
    } finally {
      this.inFlight--;
    }
  }
}

function pinned(): MediaEvent {
  return { type: 'media.pinned', principal: { kind: 'user', subject: 'alice' }, media: readyMedia('alice'), pinned: true };
}

function setup(options: AuditBatchingOptions = {}) {
  const trail = new RecordingTrail();
  const events = new AuditedMediaEvents(new NoopMediaEvents(), trail, new RequestContextStore(), options);
  return { trail, events };
}

describe('AuditedMediaEvents batching', () => {
  it('writes entries emitted together in one write', async () => {
    const { trail, events } = setup();
    for (let i = 0; i < 3; i++) events.emit(pinned());
    await events.flush();
    expect(trail.batches).toEqual([3]);
    expect(trail.entries).toHaveLength(3);
  });

  it('writes on its own after the linger time, without a flush', async () => {
    const { trail, events } = setup({ lingerMs: 1 });
    events.emit(pinned());
    expect(trail.batches).toEqual([]);
    for (let i = 0; i < 100 && trail.entries.length === 0; i++) await sleep(5);
    expect(trail.batches).toEqual([1]);
  });

  it('keeps one write in flight; what queues meanwhile goes in the next write', async () => {
    const { trail, events } = setup({ lingerMs: 0 });
    let release!: () => void;
    trail.hold = new Promise((resolve) => (release = resolve));
    events.emit(pinned());
    await sleep(10);
    expect(trail.batches).toEqual([1]);
    for (let i = 0; i < 4; i++) events.emit(pinned());
    await sleep(10);
    expect(trail.batches).toEqual([1]);
    trail.hold = null;
    release();
    await events.flush();
    expect(trail.batches).toEqual([1, 4]);
    expect(trail.maxInFlight).toBe(1);
    expect(trail.entries).toHaveLength(5);
  });

  it('writes a full batch at once and splits larger queues', async () => {
    const { trail, events } = setup({ lingerMs: 10_000, maxBatch: 2 });
    for (let i = 0; i < 5; i++) events.emit(pinned());
    await events.flush();
    expect(trail.batches).toEqual([2, 2, 1]);
    expect(trail.entries).toHaveLength(5);
  });

  it('drops entries beyond maxQueued while the store is stuck, then carries on', async () => {
    const { trail, events } = setup({ lingerMs: 0, maxQueued: 3 });
    let release!: () => void;
    trail.hold = new Promise((resolve) => (release = resolve));
    events.emit(pinned());
    await sleep(10);
    for (let i = 0; i < 5; i++) events.emit(pinned());
    trail.hold = null;
    release();
    await events.flush();
    expect(trail.entries).toHaveLength(4);
    events.emit(pinned());
    await events.flush();
    expect(trail.entries).toHaveLength(5);
  });

  it('survives a failing store and still writes later batches', async () => {
    const { trail, events } = setup();
    const append = trail.append.bind(trail);
    trail.append = () => Promise.reject(new Error('database down'));
    events.emit(pinned());
    await expect(events.flush()).resolves.toBeUndefined();
    trail.append = append;
    events.emit(pinned());
    await events.flush();
    expect(trail.entries).toHaveLength(1);
  });
});
