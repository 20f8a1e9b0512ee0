import { Readable } from 'node:stream';
import { newMediaId, type MediaId } from '@jan/mediaid';
import type { Principal } from '../access/principal';
import { DomainError } from '../media/errors';
import type { MediaObject } from '../media/media-object';
import type { MediaPolicy } from '../media/media-policy';
import { PresignCache } from '../media/presign-cache';
import { AdminMedia } from '../media/use-cases/admin-media';
import { DirectUpload } from '../media/use-cases/direct-upload';
import { IngestMedia } from '../media/use-cases/ingest-media';
import { ManageMedia } from '../media/use-cases/manage-media';
import { MediaAccess } from '../media/use-cases/media-access';
import { OpenMedia } from '../media/use-cases/open-media';
import { PresignMedia } from '../media/use-cases/presign-media';
import { ResolveMedia, type ResolveOptions } from '../media/use-cases/resolve-media';
import { readJsonText } from '../media/json-text';
import { ContentScanner, NoContentScanner } from '../ports/content-scanner';
import { FixedQuotaPolicy, type QuotaPolicy } from '../ports/quota-policy';
import { FixedClock, InMemoryAuditTrail, InMemoryUploadStaging, MagicNumberImageInspector, RecordingMediaEvents } from './fakes';
import { InMemoryMediaRepository } from './in-memory-media-repository';
import { InMemoryMediaStorage } from './in-memory-media-storage';

export type TestPolicy = MediaPolicy & { uploadTtlSeconds: number };

/** Every use case wired to the in-memory fakes, for unit tests of the domain. */
export function createUseCaseTestbed(options: { policy?: Partial<TestPolicy>; quota?: QuotaPolicy; scanner?: ContentScanner } = {}) {
  const policy: TestPolicy = {
    maxBytes: 1024,
    retentionDays: 30,
    presignTtlSeconds: 600,
    inline: { enabled: true, maxImageBytes: 512, maxRequestBytes: 1024 },
    uploadTtlSeconds: 600,
    ...options.policy,
  };
  const quota = options.quota ?? new FixedQuotaPolicy();
  const clock = new FixedClock();
  const repository = new InMemoryMediaRepository();
  const storage = new InMemoryMediaStorage(() => clock.now());
  const staging = new InMemoryUploadStaging();
  const events = new RecordingMediaEvents();
  const cache = new PresignCache(100);
  const audit = new InMemoryAuditTrail();
  const inspector = new MagicNumberImageInspector();
  const access = new MediaAccess(repository, events, clock);
  const scanner = options.scanner ?? new NoContentScanner();
  const ingest = new IngestMedia(repository, storage, staging, inspector, clock, events, policy, quota, scanner);
  const direct = new DirectUpload(access, repository, storage, staging, inspector, clock, events, policy, quota, scanner);
  const presign = new PresignMedia(access, storage, cache, clock, policy, direct);
  const resolve = new ResolveMedia(repository, storage, presign, events, policy, clock, direct);
  const open = new OpenMedia(access, storage, direct);
  const manage = new ManageMedia(access, repository, storage, cache, clock, events, policy);
  const admin = new AdminMedia(access, repository, manage, presign, audit, quota, clock, events, policy);
  const upload = (principal: Principal, data: Buffer, userId?: string) =>
    ingest.execute({ principal, source: 'data_url', body: Readable.from([data]), userId });
  /** What `GET /v1/media/{id}` does: the access check, then the bytes. */
  const read = async (principal: Principal, rawId: string) => {
    const media = await open.readable(principal, rawId);
    return { media, object: await open.stream(media) };
  };
  /** Resolves a parsed JSON value as the route resolves the request's bytes, and parses the answer back. */
  const resolvePayload = async (principal: Principal, payload: unknown, resolveOptions: ResolveOptions = {}) => {
    const text = readJsonText(new TextEncoder().encode(JSON.stringify(payload ?? null)));
    const result = await resolve.resolveScan(principal, text.placeholders(), resolveOptions);
    return { ...result, payload: JSON.parse(Buffer.concat(result.payload).toString('utf8')) as unknown };
  };
  return { policy, quota, clock, repository, storage, staging, inspector, events, cache, audit, ingest, presign, resolve, open, manage, direct, admin, upload, read, resolvePayload };
}

/** The stable code a promise rejects with; fails the test if it resolves or throws something else. */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof DomainError) return error.code;
    throw error;
  }
  throw new Error('expected a DomainError');
}

/** A pending direct-upload reservation of `ownerId`, expiring `ttlMs` after `now`. */
export function pendingMedia(ownerId: string, now: Date, ttlMs = 60_000, id: MediaId = newMediaId()): MediaObject {
  return readyMedia(ownerId, {
    id,
    bytes: 0,
    sha256: null,
    status: 'pending',
    createdAt: now,
    updatedAt: now,
    uploadExpiresAt: new Date(now.getTime() + ttlMs),
  });
}

/** A ready object of `ownerId` (a 10-byte PNG), with any field overridden. */
export function readyMedia(ownerId: string, overrides: Partial<MediaObject> = {}): MediaObject {
  const id = overrides.id ?? newMediaId();
  const now = new Date();
  return {
    id,
    ownerId,
    storageProvider: 'local',
    storageKey: `images/${id}.png`,
    mimeType: 'image/png',
    bytes: 10,
    sha256: 'a'.repeat(64),
    originalSha256: null,
    status: 'ready',
    pinned: false,
    filename: null,
    createdAt: now,
    updatedAt: now,
    retentionUntil: null,
    uploadExpiresAt: null,
    ...overrides,
  };
}
