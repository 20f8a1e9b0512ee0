import { DomainError } from '@jan/domain';
import { QueryFailedError } from 'typeorm';
import { isDatabaseUnavailable, translateDatabaseError } from './database-unavailable';

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('isDatabaseUnavailable', () => {
  it.each([
    ['connection refused', withCode('ECONNREFUSED')],
    ['connection reset', withCode('ECONNRESET')],
    ['server shutting down (57P01), wrapped by TypeORM', new QueryFailedError('SELECT 1', [], withCode('57P01'))],
    ['server starting up (57P03)', withCode('57P03')],
    ['too many connections (53300)', withCode('53300')],
    ['a connection exception (class 08)', withCode('08006')],
    ['the connection dropped mid-query', new Error('Connection terminated unexpectedly')],
    ['the pool waited too long for a connection', new Error('timeout exceeded when trying to connect')],
  ])('is true when %s', (_, error) => {
    expect(isDatabaseUnavailable(error)).toBe(true);
  });

  it.each([
    ['a unique violation', new QueryFailedError('INSERT', [], withCode('23505'))],
    ['a missing table', withCode('42P01')],
    ['a syntax error', withCode('42601', 'syntax error at or near "x"')],
    ['a plain bug', new TypeError('x is not a function')],
    ['nothing at all', undefined],
  ])('is false for %s', (_, error) => {
    expect(isDatabaseUnavailable(error)).toBe(false);
  });
});

describe('translateDatabaseError', () => {
  it('turns an outage into database_unavailable, keeping the cause, and leaves the rest alone', () => {
    const refused = withCode('ECONNREFUSED');
    const translated = translateDatabaseError(refused);
    expect(translated).toBeInstanceOf(DomainError);
    expect(translated).toMatchObject({ code: 'database_unavailable', cause: refused });
    const conflict = withCode('23505');
    expect(translateDatabaseError(conflict)).toBe(conflict);
  });
});
