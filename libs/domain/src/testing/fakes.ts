import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { DomainError, uploadTooLarge } from '../media/errors';
import type { AllowedMimeType } from '../media/media-types';
import { AuditTrail, type AuditEntry, type AuditEntryInput } from '../ports/audit-trail';
import { Clock } from '../ports/clock';
import { ContentScanner, type ScanSubject, type ScanVerdict } from '../ports/content-scanner';
import { ImageInspector, type InspectedImage } from '../ports/image-inspector';
import { MediaEvents, type MediaEvent } from '../ports/media-events';
import { RemoteFetcher, type RemoteResource } from '../ports/remote-fetcher';
import { UploadStaging, type StagedUpload, type UploadSource } from '../ports/upload-staging';

export class FixedClock extends Clock {
  constructor(private current: Date = new Date('2026-01-01T00:00:00Z')) {
    super();
  }
  now(): Date {
    return new Date(this.current);
  }
  advance(ms: number): void {
    this.current = new Date(this.current.getTime() + ms);
  }
  set(date: Date): void {
    this.current = new Date(date);
  }
}

export class RecordingMediaEvents extends MediaEvents {
  readonly events: MediaEvent[] = [];
  emit(event: MediaEvent): void {
    this.events.push(event);
  }
  ofType<T extends MediaEvent['type']>(type: T): Extract<MediaEvent, { type: T }>[] {
    return this.events.filter((e): e is Extract<MediaEvent, { type: T }> => e.type === type);
  }
}

/** Buffers in memory with the same limits and errors as the real spool. */
export class InMemoryUploadStaging extends UploadStaging {
  live = 0;

  async stage(source: UploadSource, options: { maxBytes: number }): Promise<StagedUpload> {
    const chunks: Buffer[] = [];
    let total = 0;
    for await (const chunk of Buffer.isBuffer(source) ? [source] : source) {
      total += chunk.length;
      if (total > options.maxBytes) throw uploadTooLarge(options.maxBytes);
      chunks.push(Buffer.from(chunk));
    }
    if (total === 0) throw new DomainError('empty_file', 'upload is empty');
    return this.fromBuffer(Buffer.concat(chunks));
  }

  fromBuffer(data: Buffer): StagedUpload {
    this.live++;
    let disposed = false;
    return {
      bytes: data.length,
      sha256: createHash('sha256').update(data).digest('hex'),
      head: data.subarray(0, 4096),
      buffer: data,
      path: null,
      open: () => Readable.from([data]),
      dispose: async () => {
        if (!disposed) this.live--;
        disposed = true;
      },
    };
  }
}

const SIGNATURES: [AllowedMimeType, number[]][] = [
  ['image/png', [0x89, 0x50, 0x4e, 0x47]],
  ['image/jpeg', [0xff, 0xd8, 0xff]],
  ['image/gif', [0x47, 0x49, 0x46, 0x38]],
  ['image/bmp', [0x42, 0x4d]],
];

/** Recognises a few magic numbers; everything else is unsupported. For unit tests only. */
export class MagicNumberImageInspector extends ImageInspector {
  /** How many uploads were inspected (dedupe hits must not be). */
  inspections = 0;
  readonly storesAsReceived = true;
  /** Set to make the next `inspect` refuse the upload (a corrupt image), after the sniff passed. */
  refuseNext: DomainError | null = null;

  async inspect(upload: StagedUpload): Promise<InspectedImage> {
    this.inspections++;
    const mimeType = await this.sniff(upload);
    if (this.refuseNext) {
      const error = this.refuseNext;
      this.refuseNext = null;
      throw error;
    }
    return { facts: { mimeType, width: 1, height: 1, frames: 1 }, stored: upload };
  }

  async sniff(upload: StagedUpload): Promise<AllowedMimeType> {
    const found = SIGNATURES.find(([, magic]) => magic.every((b, i) => upload.head[i] === b));
    if (!found) throw new DomainError('unsupported_media_type', 'not an allowed image type');
    return found[0];
  }
}

export class FakeRemoteFetcher extends RemoteFetcher {
  readonly responses = new Map<string, Buffer | DomainError>();
  async fetch(url: string): Promise<RemoteResource> {
    const found = this.responses.get(url);
    if (!found) throw new DomainError('remote_fetch_failed', 'upstream answered 404', { status: 404 });
    if (found instanceof DomainError) throw found;
    return { body: Readable.from([found]), contentType: null, contentLength: found.length };
  }
}

/** A tiny valid-looking PNG header followed by `seed`, so distinct seeds give distinct bytes. */
export function pngBytes(seed = 'x'): Buffer {
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from(seed)]);
}

/** The audit trail in memory, for use-case and mapping tests. */
export class InMemoryAuditTrail extends AuditTrail {
  readonly entries: AuditEntry[] = [];
  private next = 1;

  async append(entry: AuditEntryInput): Promise<AuditEntry> {
    const stored: AuditEntry = {
      id: String(this.next++),
      occurredAt: entry.occurredAt ?? new Date(),
      actorKind: entry.actorKind,
      actorId: entry.actorId,
      action: entry.action,
      mediaId: entry.mediaId ?? null,
      outcome: entry.outcome,
      reasonCode: entry.reasonCode ?? null,
      requestId: entry.requestId ?? null,
      traceId: entry.traceId ?? null,
      clientIp: entry.clientIp ?? null,
      details: entry.details ?? null,
    };
    this.entries.push(stored);
    return stored;
  }

  async recent(mediaId: string, limit = 50): Promise<AuditEntry[]> {
    return this.entries
      .filter((e) => e.mediaId === mediaId)
      .reverse()
      .slice(0, limit);
  }

  async prune(before: Date, limit: number): Promise<number> {
    const old = this.entries
      .filter((e) => e.occurredAt < before)
      .sort((a, b) => a.occurredAt.getTime() - b.occurredAt.getTime())
      .slice(0, Math.max(0, limit));
    const gone = new Set(old);
    this.entries.splice(0, this.entries.length, ...this.entries.filter((e) => !gone.has(e)));
    return old.length;
  }
}

/**
 * A scanner for use-case tests: refuses bytes that contain `marker`, or answers
 * `scanner_unavailable` while `down`. Records the sha256 of everything it was offered.
 */
export class ScriptedContentScanner extends ContentScanner {
  readonly name = 'scripted';
  readonly scanned: string[] = [];
  down = false;

  constructor(private readonly marker = 'EVIL') {
    super();
  }

  async scan(subject: ScanSubject): Promise<ScanVerdict> {
    if (this.down) throw new DomainError('scanner_unavailable', 'the content scanner is not answering');
    this.scanned.push(subject.sha256);
    const chunks: Buffer[] = [];
    for await (const chunk of subject.open()) chunks.push(Buffer.from(chunk as Uint8Array));
    return Buffer.concat(chunks).includes(this.marker) ? { verdict: 'rejected', reason: `Test.${this.marker}` } : { verdict: 'clean' };
  }

  async ping(): Promise<boolean> {
    return !this.down;
  }
}
