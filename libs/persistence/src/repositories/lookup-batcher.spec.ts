import { setImmediate as nextTurn } from 'node:timers/promises';
import fc from 'fast-check';
import { LookupBatcher } from './lookup-batcher';

interface Row {
  id: string;
  tags: string[];
}

/** A batcher over an in-memory table that records every statement it is asked to run. */
function tableOf(ids: string[], options: { maxKeys?: number; fail?: Error; failOn?: string; shared?: boolean } = {}) {
  const table = new Map(ids.map((id) => [id, { id, tags: [id] }]));
  const statements: string[][] = [];
  const batcher = new LookupBatcher<string, Row>({
    run: async (keys) => {
      statements.push(keys);
      if (options.fail) throw options.fail;
      if (options.failOn && keys.includes(options.failOn)) throw new Error(`statement refused ${options.failOn}`);
      return keys.flatMap((key) => (table.has(key) ? [table.get(key)!] : []));
    },
    keyOf: (row) => row.id,
    copy: (row) => ({ id: row.id, tags: [...row.tags] }),
    maxKeys: options.maxKeys,
    sharedFailure: options.shared === undefined ? undefined : () => options.shared!,
  });
  return { batcher, statements, table };
}

describe('LookupBatcher', () => {
  it('runs the lookups of one turn as one statement and gives each caller only its own rows', async () => {
    const { batcher, statements } = tableOf(['a', 'b', 'c', 'd']);
    const [first, second, third] = await Promise.all([batcher.load(['a', 'b']), batcher.load(['c', 'missing']), batcher.load(['b'])]);

    expect(statements).toEqual([['a', 'b', 'c', 'missing']]);
    expect(first.map((row) => row.id)).toEqual(['a', 'b']);
    expect(second.map((row) => row.id)).toEqual(['c']);
    expect(third.map((row) => row.id)).toEqual(['b']);
  });

  it('gives callers who share a row separate copies of it', async () => {
    const { batcher, table } = tableOf(['a']);
    const [mine, yours] = await Promise.all([batcher.load(['a']), batcher.load(['a'])]);

    mine[0].tags.push('changed by one caller');
    expect(yours[0].tags).toEqual(['a']);
    expect(table.get('a')!.tags).toEqual(['a']);
    expect(mine[0]).not.toBe(yours[0]);
  });

  it('hands a caller alone the rows as they came, without copying', async () => {
    const { batcher, table } = tableOf(['a']);
    const [row] = await batcher.load(['a']);
    expect(row).toBe(table.get('a'));
  });

  it('returns rows in the order the caller asked, once per repeated key', async () => {
    const { batcher, statements } = tableOf(['a', 'b', 'c']);
    const rows = await batcher.load(['c', 'a', 'c', 'b']);
    expect(rows.map((row) => row.id)).toEqual(['c', 'a', 'b']);
    expect(statements).toEqual([['c', 'a', 'b']]);
  });

  it('starts a new statement for lookups made after the batch was sent', async () => {
    const { batcher, statements } = tableOf(['a', 'b']);
    const early = batcher.load(['a']);
    await nextTurn();
    const late = batcher.load(['b']);

    expect((await early).map((row) => row.id)).toEqual(['a']);
    expect((await late).map((row) => row.id)).toEqual(['b']);
    expect(statements).toEqual([['a'], ['b']]);
  });

  it('splits a turn into statements of at most maxKeys keys, never splitting one caller', async () => {
    const { batcher, statements } = tableOf(['a', 'b', 'c', 'd', 'e'], { maxKeys: 3 });
    const results = await Promise.all([batcher.load(['a', 'b']), batcher.load(['b', 'c']), batcher.load(['d', 'e']), batcher.load(['a'])]);

    expect(statements).toEqual([
      ['a', 'b', 'c'],
      ['d', 'e', 'a'],
    ]);
    expect(results.map((rows) => rows.map((row) => row.id))).toEqual([['a', 'b'], ['b', 'c'], ['d', 'e'], ['a']]);
  });

  it('sends a caller with more keys than maxKeys in one statement of its own', async () => {
    const { batcher, statements } = tableOf(['a', 'b', 'c', 'd'], { maxKeys: 2 });
    const [big, small] = await Promise.all([batcher.load(['a', 'b', 'c']), batcher.load(['d'])]);

    expect(statements).toEqual([['a', 'b', 'c'], ['d']]);
    expect(big).toHaveLength(3);
    expect(small).toHaveLength(1);
  });

  it('fails only the caller whose keys failed the shared statement, asking each caller again alone', async () => {
    const { batcher, statements } = tableOf(['a', 'b'], { failOn: 'bad' });
    const [first, culprit, last] = await Promise.allSettled([batcher.load(['a']), batcher.load(['bad']), batcher.load(['b', 'a'])]);

    expect(first).toEqual({ status: 'fulfilled', value: [{ id: 'a', tags: ['a'] }] });
    expect(culprit).toMatchObject({ status: 'rejected', reason: { message: 'statement refused bad' } });
    expect(last).toEqual({ status: 'fulfilled', value: [{ id: 'b', tags: ['b'] }, { id: 'a', tags: ['a'] }] });
    expect(statements).toEqual([['a', 'bad', 'b'], ['a'], ['bad'], ['b', 'a']]);
  });

  it('fails every caller of a batch at once when the failure is everyone’s (the database is down)', async () => {
    const outage = new Error('database_unavailable');
    const { batcher, statements } = tableOf(['a', 'b'], { fail: outage, shared: true });
    const results = await Promise.allSettled([batcher.load(['a']), batcher.load(['b'])]);

    expect(statements).toHaveLength(1);
    expect(results).toEqual([
      { status: 'rejected', reason: outage },
      { status: 'rejected', reason: outage },
    ]);
  });

  it('fails the callers, not the process, when the statement throws instead of rejecting', async () => {
    const broken = new LookupBatcher<string, Row>({
      run: () => {
        throw new TypeError('bad statement');
      },
      keyOf: (row) => row.id,
      copy: (row) => row,
    });
    await expect(Promise.all([broken.load(['a']), broken.load(['b'])])).rejects.toThrow('bad statement');
  });

  it('answers an empty lookup without a statement', async () => {
    const { batcher, statements } = tableOf(['a']);
    expect(await batcher.load([])).toEqual([]);
    await nextTurn();
    expect(statements).toEqual([]);
  });

  it('gives every caller what a statement of its own would have, for any mix of callers and keys', async () => {
    const key = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h');
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(key, { maxLength: 6 }), { maxLength: 12 }), fc.integer({ min: 1, max: 8 }), async (callers, maxKeys) => {
        const { batcher, statements, table } = tableOf(['a', 'c', 'd', 'g'], { maxKeys });
        const results = await Promise.all(callers.map((keys) => batcher.load(keys)));

        results.forEach((rows, i) => {
          const alone = [...new Set(callers[i])].filter((k) => table.has(k));
          expect(rows.map((row) => row.id)).toEqual(alone);
        });
        // Nothing asked twice in one statement; none larger than maxKeys unless one caller alone was.
        for (const sent of statements) {
          expect(new Set(sent).size).toBe(sent.length);
          const biggestCaller = Math.max(...callers.map((keys) => new Set(keys).size));
          expect(sent.length).toBeLessThanOrEqual(Math.max(maxKeys, biggestCaller));
        }
        // Every key asked for was in some statement, and no statement was sent for nothing.
        expect(new Set(statements.flat())).toEqual(new Set(callers.flat()));
        expect(statements.every((sent) => sent.length > 0)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
