import { ContentScanner } from '../ports/content-scanner';
import type { StagedUpload } from '../ports/upload-staging';
import { DomainError } from './errors';

/** A scanner's refusal. `reason` (a signature or rule name) is for the event log and audit trail only. */
class ContentRejectedError extends DomainError {
  constructor(readonly reason: string) {
    super('content_rejected', 'the upload was rejected by the content scanner');
  }
}

/** The scanner's reason when `error` is its refusal. */
export function rejectionReason(error: unknown): string | undefined {
  return error instanceof ContentRejectedError ? error.reason : undefined;
}

/**
 * Offers the bytes about to be stored to the malware/DLP hook; a refusal is `content_rejected`
 * (422), a scanner that does not answer throws `scanner_unavailable` itself.
 */
export async function scanOrReject(scanner: ContentScanner, upload: StagedUpload, mimeType: string): Promise<void> {
  const result = await scanner.scan({ bytes: upload.bytes, sha256: upload.sha256, mimeType, open: () => upload.open() });
  if (result.verdict === 'rejected') throw new ContentRejectedError(result.reason);
}
