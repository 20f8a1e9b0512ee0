import { Readable } from 'node:stream';
import { ContentScanner, DomainError, type ScanSubject, type ScanVerdict } from '@jan/domain';

export interface WebhookScannerOptions {
  url: string;
  timeoutMs: number;
}

/**
 * A DLP or malware service of your own behind HTTP. Each image is POSTed to the URL as its raw
 * bytes (`Content-Type` the sniffed type, `X-Jan-Media-Sha256` its hash); the service answers
 * 200 with `{"verdict":"clean"}` or `{"verdict":"rejected","reason":"<rule>"}`. Any other answer,
 * a timeout or a refused connection is `scanner_unavailable` (uploads fail closed). Readiness
 * sends `GET` to the same URL and expects a 2xx.
 */
export class WebhookContentScanner extends ContentScanner {
  readonly name = 'webhook';

  constructor(private readonly options: WebhookScannerOptions) {
    super();
  }

  async scan(subject: ScanSubject): Promise<ScanVerdict> {
    let response: Response;
    try {
      response = await fetch(this.options.url, {
        method: 'POST',
        headers: { 'content-type': subject.mimeType, 'content-length': String(subject.bytes), 'x-jan-media-sha256': subject.sha256 },
        body: Readable.toWeb(subject.open()) as ReadableStream<Uint8Array>,
        duplex: 'half',
        signal: AbortSignal.timeout(this.options.timeoutMs),
      } as RequestInit);
    } catch (error) {
      throw unavailable(error);
    }
    const text = await response.text().catch(() => '');
    if (response.status !== 200) throw unavailable(new Error(`the scanner answered ${response.status}`));
    let answer: { verdict?: unknown; reason?: unknown };
    try {
      answer = JSON.parse(text) as typeof answer;
    } catch {
      throw unavailable(new Error('the scanner answered something that is not JSON'));
    }
    if (answer?.verdict === 'clean') return { verdict: 'clean' };
    if (answer?.verdict === 'rejected') return { verdict: 'rejected', reason: typeof answer.reason === 'string' ? answer.reason.slice(0, 200) : 'rejected' };
    throw unavailable(new Error(`the scanner answered an unknown verdict ${JSON.stringify(answer?.verdict)}`));
  }

  async ping(): Promise<boolean> {
    const response = await fetch(this.options.url, { signal: AbortSignal.timeout(this.options.timeoutMs) });
    await response.arrayBuffer().catch(() => undefined);
    return response.ok;
  }
}

function unavailable(cause: unknown): DomainError {
  return new DomainError('scanner_unavailable', 'the content scanner is not answering; try again later', { scanner: 'webhook' }, { cause });
}
