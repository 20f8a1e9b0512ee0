import { BodyMemoryBudget } from './body-memory-budget';

const MiB = 1024 * 1024;

describe('BodyMemoryBudget', () => {
  it('lets small bodies through without counting them', async () => {
    const budget = new BodyMemoryBudget(10 * MiB);
    expect(budget.governs(512 * 1024)).toBe(false);
    await budget.acquire(512 * 1024);
    expect(budget.inUse).toBe(0);
    expect(budget.governs(2 * MiB)).toBe(true);
    expect(new BodyMemoryBudget(0).governs(2 * MiB)).toBe(false);
  });

  it('holds large bodies back until earlier ones release, in arrival order', async () => {
    const budget = new BodyMemoryBudget(50 * MiB);
    const first = await budget.acquire(27 * MiB);
    const order: string[] = [];
    const second = budget.acquire(27 * MiB).then((release) => {
      order.push('second');
      return release;
    });
    const third = budget.acquire(20 * MiB).then((release) => {
      order.push('third');
      return release;
    });
    await new Promise((r) => setImmediate(r));
    // The third would fit in what is left, but waits its turn behind the second.
    expect(order).toEqual([]);
    first();
    first();
    const releases = await Promise.all([second, third]);
    expect(order).toEqual(['second', 'third']);
    expect(budget.inUse).toBe(47 * MiB);
    for (const release of releases) release();
    expect(budget.inUse).toBe(0);
  });

  it('gives a body larger than the budget the whole budget rather than blocking it forever', async () => {
    const budget = new BodyMemoryBudget(10 * MiB);
    const release = await budget.acquire(30 * MiB);
    expect(budget.inUse).toBe(10 * MiB);
    release();
    expect(budget.inUse).toBe(0);
  });
});
