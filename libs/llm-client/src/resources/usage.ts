import type { MediaClient, RequestOptions } from '../client.ts';
import type { Usage } from '../types.ts';

/** `client.usage`: what the acting user stores, against their quota. */
export class UsageResource {
  constructor(private readonly client: MediaClient) {}

  /** `GET /v1/usage` for the caller (or `options.userId` when a service acts for a user). */
  retrieve(options: RequestOptions = {}): Promise<Usage> {
    return this.client.requestJSON({ method: 'GET', path: '/v1/usage', retry: 'safe' }, options);
  }
}
