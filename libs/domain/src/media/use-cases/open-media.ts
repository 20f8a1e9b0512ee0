import type { Principal } from '../../access/principal';
import { MediaStorage, type ByteRange, type StoredObjectStream } from '../../ports/media-storage';
import type { MediaObject } from '../media-object';
import { MediaAccess } from './media-access';
import type { PendingUploadCompleter } from './pending-upload-completer';

/** Streams an object's bytes to a caller who may read it. */
export class OpenMedia {
  constructor(
    private readonly access: MediaAccess,
    private readonly storage: MediaStorage,
    /** Completes an old client's direct upload on its first read; without it, pending stays 404. */
    private readonly completer?: PendingUploadCompleter,
  ) {}

  /** The object, when the principal may read it and it is ready (or a direct upload completed now). */
  async readable(principal: Principal, rawId: string): Promise<MediaObject> {
    return this.access.readable(principal, rawId, 'read', { completer: this.completer });
  }

  /** Streams an object whose access was already checked with `readable`. */
  async stream(media: MediaObject, range?: ByteRange): Promise<StoredObjectStream> {
    return this.storage.get(media.storageKey, range);
  }

  async describe(principal: Principal, rawId: string): Promise<MediaObject> {
    return this.access.readable(principal, rawId, 'describe', { allowPending: true });
  }
}
