import { performance } from 'node:perf_hooks';
import { ContentScanner, NoContentScanner, type ScanSubject, type ScanVerdict } from '@jan/domain';
import type { MediaConfig } from '../../config/media-config';
import type { MediaMetrics } from '../observability/media-metrics';
import { ClamdContentScanner } from './clamd-content-scanner';
import { WebhookContentScanner } from './webhook-content-scanner';

/** The scanner `MEDIA_SCANNER` names (docs/configuration.md). */
export function contentScannerOf(config: MediaConfig): ContentScanner {
  switch (config.scanner) {
    case 'clamd':
      return new ClamdContentScanner({ address: config.scannerClamdAddress, maxBytes: config.scannerClamdMaxBytes, timeoutMs: config.scannerTimeoutMs });
    case 'webhook':
      return new WebhookContentScanner({ url: config.scannerWebhookUrl!, timeoutMs: config.scannerTimeoutMs });
    case 'none':
      return new NoContentScanner();
  }
}

/**
 * Times every scan into `media_scan_duration_seconds{scanner, outcome}`. With no scanner
 * configured nothing is scanned: its calls count as `outcome="skipped"`, never as `clean`, so a
 * dashboard of clean scans shows only bytes a scanner has read.
 */
export class MeasuredContentScanner extends ContentScanner {
  readonly name: string;

  constructor(
    private readonly inner: ContentScanner,
    private readonly metrics: MediaMetrics,
  ) {
    super();
    this.name = inner.name;
  }

  async scan(subject: ScanSubject): Promise<ScanVerdict> {
    const started = performance.now();
    let outcome = 'unavailable';
    try {
      const result = await this.inner.scan(subject);
      outcome = this.inner instanceof NoContentScanner ? 'skipped' : result.verdict;
      return result;
    } finally {
      this.metrics.scanDuration.observe({ scanner: this.name, outcome }, (performance.now() - started) / 1000);
    }
  }

  ping(): Promise<boolean> {
    return this.inner.ping();
  }
}
