import type { Readable } from 'node:stream';

/** What a scanner needs: the bytes (openable more than once) and what they are. */
export interface ScanSubject {
  readonly bytes: number;
  readonly sha256: string;
  readonly mimeType: string;
  open(): Readable;
}

/** `rejected` carries the scanner's reason (a signature or rule name): for operators, never sent to the client. */
export type ScanVerdict = { readonly verdict: 'clean' } | { readonly verdict: 'rejected'; readonly reason: string };

/**
 * The malware/DLP hook: every image is offered to it after it has been sniffed and decoded and
 * before it is stored or made ready. A scanner that cannot answer throws
 * `DomainError('scanner_unavailable')`: uploads fail closed (503) rather than go unscanned.
 */
export abstract class ContentScanner {
  /** A short name for logs, metrics and the readiness probe (`none`, `clamd`, `webhook`). */
  abstract readonly name: string;
  abstract scan(subject: ScanSubject): Promise<ScanVerdict>;
  /** Whether the scanner answers now (for /readyz); throws or returns false when it does not. */
  abstract ping(): Promise<boolean>;
}

/** The default: nothing configured, everything passes (docs/operations.md says how to add one). */
export class NoContentScanner extends ContentScanner {
  readonly name = 'none';
  async scan(): Promise<ScanVerdict> {
    return { verdict: 'clean' };
  }
  async ping(): Promise<boolean> {
    return true;
  }
}
