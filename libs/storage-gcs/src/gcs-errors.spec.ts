import { isDomainError } from '@jan/domain';
import { isGcsMissing, isGcsPreconditionFailed, toDomainError } from './gcs-errors';

// The shapes of @google-cloud/storage's ApiError for GCS's JSON API answers. The emulator answers
// "No such object" even for a bucket that does not exist, so only these can show the difference.
const missingObject = { code: 404, message: 'No such object: media/images/jan_01hqr8v9k2x3f4g5h6j7k8m9n0.png' };
const missingBucket = { code: 404, message: 'The specified bucket does not exist.' };

describe('GCS errors', () => {
  it('reads a missing object as missing: media_not_found', () => {
    expect(isGcsMissing(missingObject)).toBe(true);
    expect(toDomainError(missingObject, 'get').code).toBe('media_not_found');
  });

  it('reads a missing bucket as a misconfigured backend, storage_unavailable, not as a missing object', () => {
    expect(isGcsMissing(missingBucket)).toBe(false);
    const mapped = toDomainError(missingBucket, 'get');
    expect(isDomainError(mapped, 'storage_unavailable')).toBe(true);
    expect(mapped.details).toEqual({ provider: 'gcs', operation: 'get', status: 404, gcs_error: 'bucket_not_found' });
  });

  it('keeps its other mappings', () => {
    expect(toDomainError({ code: 503, message: 'backend error' }, 'put').code).toBe('storage_unavailable');
    expect(toDomainError({ code: 416, message: 'range' }, 'get').code).toBe('invalid_request');
    expect(toDomainError({ code: 'ECONNREFUSED', message: 'refused' }, 'get').code).toBe('storage_unavailable');
  });

  it('reads a refused precondition (412, what ifGenerationMatch=0 meets when an object is there) as one, and nothing else', () => {
    const refused = { code: 412, message: 'At least one of the pre-conditions you specified did not hold.', errors: [{ reason: 'conditionNotMet' }] };
    expect(isGcsPreconditionFailed(refused)).toBe(true);
    // A resumable upload's session request refused: gaxios's error, the status on its response.
    expect(isGcsPreconditionFailed({ message: 'Request failed with status code 412', response: { status: 412 } })).toBe(true);
    expect(isGcsPreconditionFailed(missingObject)).toBe(false);
    expect(isGcsPreconditionFailed({ code: 'ECONNRESET', message: 'reset' })).toBe(false);
    // Outside putNew (no precondition was sent) a 412 stays an unexpected answer.
    expect(toDomainError(refused, 'put').code).toBe('internal_error');
  });
});
