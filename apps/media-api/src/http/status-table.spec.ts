import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DomainError, ERROR_CODES } from '@jan/domain';
import { APIError } from '@jan/media-client';
import { mapError, sendsDetails } from './domain-exception.filter';
import { STATUS_BY_CODE } from './status-table';

describe('status table', () => {
  it('maps every domain code, and only internal_error to 500', () => {
    for (const code of ERROR_CODES) {
      expect(STATUS_BY_CODE[code]).toBeDefined();
      if (code !== 'internal_error') expect(STATUS_BY_CODE[code]).not.toBe(500);
    }
  });

  it('is documented: docs/api.md lists every code with its status', () => {
    const doc = readFileSync(join(__dirname, '../../../../docs/api.md'), 'utf8');
    for (const [code, status] of Object.entries(STATUS_BY_CODE)) {
      expect(doc).toMatch(new RegExp(`\\| \`${code}\` \\| ${status} \\|`));
    }
  });

  it('has an SDK error class for every status it answers, so no code reaches a client as a bare APIError', () => {
    const bare = Object.entries(STATUS_BY_CODE)
      .filter(([code, status]) => APIError.generate(status, { code }, new Headers()).constructor === APIError)
      .map(([code, status]) => `${status} ${code}`);
    expect(bare).toEqual([]);
  });

  it('maps domain errors, framework errors and unknown errors', () => {
    expect(mapError(new DomainError('payload_too_large', 'big'))).toMatchObject({ status: 413, code: 'payload_too_large' });
    expect(mapError(Object.assign(new Error('x'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE' }))).toMatchObject({ status: 413, code: 'payload_too_large' });
    expect(mapError(Object.assign(new Error('x'), { code: 'FST_ERR_CTP_INVALID_JSON_BODY' }))).toMatchObject({ status: 400 });
    expect(mapError(new TypeError('boom'))).toEqual({ status: 500, code: 'internal_error', message: 'internal error' });
  });

  it('sends the details of client errors, never those naming a storage backend, of storage_unavailable or of a 500', () => {
    expect(sendsDetails(mapError(new DomainError('payload_too_large', 'big', { max_bytes: 10 })))).toBe(true);
    expect(sendsDetails(mapError(new DomainError('media_not_found', 'gone', { ids: ['jan_x'] })))).toBe(true);
    const s3 = { provider: 's3', operation: 'get', s3_error: 'InvalidRange', status: 416 };
    expect(sendsDetails(mapError(new DomainError('invalid_request', 'requested range is not satisfiable', s3)))).toBe(false);
    expect(sendsDetails(mapError(new DomainError('checksum_mismatch', 'bad', { provider: 'gcs', operation: 'put' })))).toBe(false);
    expect(sendsDetails(mapError(new DomainError('storage_unavailable', 'down', { retry: true })))).toBe(false);
    expect(sendsDetails(mapError(new DomainError('internal_error', 'odd', { s3_error: 'KMS.DisabledException' })))).toBe(false);
  });
});
