export { InMemoryMediaRepository } from './in-memory-media-repository';
export { InMemoryMediaStorage } from './in-memory-media-storage';
export { FakeRemoteFetcher, FixedClock, InMemoryAuditTrail, InMemoryUploadStaging, MagicNumberImageInspector, RecordingMediaEvents, ScriptedContentScanner, pngBytes } from './fakes';
export { codeOf, createUseCaseTestbed, pendingMedia, readyMedia, type TestPolicy } from './use-case-testbed';
export { statedExpiry, statedUploadExpiry } from './signed-url';
