import { InFlightWrites } from './in-flight-writes';

describe('InFlightWrites', () => {
  it('is settled at once when nothing runs', async () => {
    await expect(new InFlightWrites().settled(10_000)).resolves.toBe(true);
  });

  it('settles when the last running handler leaves', async () => {
    const writes = new InFlightWrites();
    writes.enter();
    writes.enter();
    const settled = writes.settled(10_000);
    writes.leave();
    let done = false;
    void settled.then(() => (done = true));
    await Promise.resolve();
    expect(done).toBe(false);
    writes.leave();
    await expect(settled).resolves.toBe(true);
  });

  it('gives up after the timeout while a handler still runs', async () => {
    const writes = new InFlightWrites();
    writes.enter();
    await expect(writes.settled(20)).resolves.toBe(false);
    // A later leave finds no stale waiter.
    writes.leave();
    await expect(writes.settled(20)).resolves.toBe(true);
  });
});
