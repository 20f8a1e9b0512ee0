import { WriteBatcher } from './write-batcher';

interface Write {
  id: string;
  value: string;
}

/** A batcher over an in-memory table that records every statement it is asked to run. */
function tableOf(options: { failOn?: string; shared?: boolean; skip?: string; maxRows?: number } = {}) {
  const table = new Map<string, Write>();
  const statements: string[][] = [];
  const batcher = new WriteBatcher<Write, Write>({
    run: async (writes) => {
      statements.push(writes.map((write) => write.id));
      if (options.failOn && writes.some((write) => write.id === options.failOn)) throw new Error(`statement refused ${options.failOn}`);
      const written = writes.filter((write) => write.id !== options.skip);
      for (const write of written) table.set(write.id, { ...write });
      return written.map((write) => ({ ...write }));
    },
    keyOfInput: (write) => write.id,
    keyOfRow: (row) => row.id,
    sharedFailure: options.shared === undefined ? undefined : () => options.shared!,
    maxRows: options.maxRows,
  });
  return { batcher, statements, table };
}

describe('WriteBatcher', () => {
  it('writes the rows of one turn with one statement and gives each caller its own row', async () => {
    const { batcher, statements, table } = tableOf();
    const rows = await Promise.all([batcher.write({ id: 'a', value: '1' }), batcher.write({ id: 'b', value: '2' }), batcher.write({ id: 'c', value: '3' })]);

    expect(statements).toEqual([['a', 'b', 'c']]);
    expect(rows).toEqual([
      { id: 'a', value: '1' },
      { id: 'b', value: '2' },
      { id: 'c', value: '3' },
    ]);
    expect([...table.keys()]).toEqual(['a', 'b', 'c']);
  });

  it('answers null to the caller whose row the statement left out, and the rows to the others', async () => {
    const { batcher } = tableOf({ skip: 'b' });
    const rows = await Promise.all([batcher.write({ id: 'a', value: '1' }), batcher.write({ id: 'b', value: '2' })]);
    expect(rows).toEqual([{ id: 'a', value: '1' }, null]);
  });

  it('writes each row again alone when the shared statement fails, failing only the caller whose row is refused', async () => {
    const { batcher, statements, table } = tableOf({ failOn: 'b' });
    const results = await Promise.allSettled([batcher.write({ id: 'a', value: '1' }), batcher.write({ id: 'b', value: '2' }), batcher.write({ id: 'c', value: '3' })]);

    expect(results[0]).toEqual({ status: 'fulfilled', value: { id: 'a', value: '1' } });
    expect(results[1]).toMatchObject({ status: 'rejected', reason: { message: 'statement refused b' } });
    expect(results[2]).toEqual({ status: 'fulfilled', value: { id: 'c', value: '3' } });
    expect(statements).toEqual([['a', 'b', 'c'], ['a'], ['b'], ['c']]);
    expect([...table.keys()].sort()).toEqual(['a', 'c']);
  });

  it('fails every caller at once on a failure each would get alone (the database is down)', async () => {
    const { batcher, statements } = tableOf({ failOn: 'b', shared: true });
    const results = await Promise.allSettled([batcher.write({ id: 'a', value: '1' }), batcher.write({ id: 'b', value: '2' })]);
    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected']);
    expect(statements).toEqual([['a', 'b']]);
  });

  it('never merges two writes of one row: the second runs alone, with its own values', async () => {
    const { batcher, statements } = tableOf();
    const rows = await Promise.all([batcher.write({ id: 'a', value: 'first' }), batcher.write({ id: 'a', value: 'second' }), batcher.write({ id: 'b', value: '3' })]);

    expect(rows).toEqual([
      { id: 'a', value: 'first' },
      { id: 'a', value: 'second' },
      { id: 'b', value: '3' },
    ]);
    expect(statements).toContainEqual(['a', 'b']);
    expect(statements).toContainEqual(['a']);
    expect(statements).toHaveLength(2);
  });

  it('writes a row again in a later turn once its first write has finished', async () => {
    const { batcher, statements } = tableOf();
    await batcher.write({ id: 'a', value: 'first' });
    await Promise.all([batcher.write({ id: 'a', value: 'again' }), batcher.write({ id: 'b', value: '2' })]);
    expect(statements).toEqual([['a'], ['a', 'b']]);
  });

  it('splits a turn with more rows than one statement takes', async () => {
    const { batcher, statements } = tableOf({ maxRows: 2 });
    await Promise.all(['a', 'b', 'c', 'd', 'e'].map((id) => batcher.write({ id, value: id })));
    expect(statements).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
  });
});
