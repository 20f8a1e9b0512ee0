import type { Readable } from 'node:stream';

export interface RemoteResource {
  body: Readable;
  contentType: string | null;
  contentLength: number | null;
}

/**
 * Fetches a remote URL for ingestion. Implementations refuse internal addresses
 * (`remote_fetch_blocked`), map upstream failures (`remote_fetch_failed`) and time out
 * (`remote_fetch_timeout`); they reject a declared Content-Length over `maxBytes` up front.
 */
export abstract class RemoteFetcher {
  abstract fetch(url: string, options: { maxBytes: number; signal?: AbortSignal }): Promise<RemoteResource>;
}
