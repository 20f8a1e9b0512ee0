import type { ErrorCode } from '@jan/domain';
import type { HttpErrorCode } from './status-table';

/** Every error response: `error` is what Jan's clients already read; `code` is stable. */
export interface ErrorBody {
  error: string;
  code: ErrorCode | HttpErrorCode;
  request_id: string;
  details?: Record<string, unknown>;
}
