import type { MediaClient, RequestOptions } from '../client.ts';
import { UnexpectedResponseError } from '../errors.ts';
import type {
  AdminListParams,
  AdminMediaDescription,
  AdminMediaListItem,
  AdminMediaListResponse,
  AdminPurgeParams,
  AdminPurgeResult,
  AdminReissueResult,
  Usage,
} from '../types.ts';

/**
 * One page of `GET /v1/admin/media`. Iterate it with `for await` to walk every item from here
 * to the last page, or use `iterPages()` for whole pages. An answer without an `items` array (or
 * with a `next_cursor` that is not a string) throws {@link UnexpectedResponseError}: an empty
 * page made up from it would read as "no objects".
 */
export class AdminMediaPage implements AsyncIterable<AdminMediaListItem> {
  readonly items: AdminMediaListItem[];
  readonly nextCursor: string | null;

  constructor(
    private readonly resource: AdminResource,
    private readonly params: AdminListParams,
    private readonly options: RequestOptions,
    response: AdminMediaListResponse,
  ) {
    const body: unknown = response;
    const answer = typeof body === 'object' && body !== null ? (body as Partial<AdminMediaListResponse>) : {};
    if (!Array.isArray(answer.items)) throw new UnexpectedResponseError('GET /v1/admin/media', 'JSON without an items array');
    if (answer.next_cursor !== undefined && answer.next_cursor !== null && typeof answer.next_cursor !== 'string') {
      throw new UnexpectedResponseError('GET /v1/admin/media', 'JSON without a string or null next_cursor');
    }
    this.items = answer.items;
    this.nextCursor = answer.next_cursor ?? null;
  }

  hasNextPage(): boolean {
    return this.nextCursor !== null && this.nextCursor !== '';
  }

  /** The following page, or `null` after the last one. */
  async getNextPage(): Promise<AdminMediaPage | null> {
    if (!this.hasNextPage()) return null;
    return this.resource.list({ ...this.params, cursor: this.nextCursor ?? undefined }, this.options);
  }

  /** This page and every following one, fetched lazily. */
  async *iterPages(): AsyncGenerator<AdminMediaPage> {
    let page: AdminMediaPage | null = this;
    while (page) {
      yield page;
      page = await page.getNextPage();
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<AdminMediaListItem> {
    for await (const page of this.iterPages()) yield* page.items;
  }
}

/** `client.admin`: operator endpoints. Requests carry `adminKey` as `X-Media-Admin-Key`. */
export class AdminResource {
  constructor(private readonly client: MediaClient) {}

  /** `GET /v1/admin/media/{id}`: owner, storage location, hashes, status, recent audit events. */
  describe(id: string, options: RequestOptions = {}): Promise<AdminMediaDescription> {
    return this.client.requestJSON(
      { method: 'GET', path: `/v1/admin/media/${encodeURIComponent(id)}`, retry: 'safe', admin: true },
      options,
    );
  }

  /**
   * `POST /v1/admin/media/purge`. `dryRun` defaults to `true`: deleting needs an explicit
   * `dryRun: false`. Not retried unless `options.idempotencyKey` is given.
   */
  purge(params: AdminPurgeParams, options: RequestOptions = {}): Promise<AdminPurgeResult> {
    const body: Record<string, unknown> = { dry_run: params.dryRun ?? true };
    if (params.ids) body['ids'] = params.ids;
    if (params.expired !== undefined) body['expired'] = params.expired;
    if (params.owner !== undefined) body['owner'] = params.owner;
    return this.client.requestJSON(
      { method: 'POST', path: '/v1/admin/media/purge', body: this.client.json(body), retry: 'unsafe', admin: true },
      options,
    );
  }

  /** `POST /v1/admin/media/{id}/reissue`: a fresh signed URL, optionally with its own lifetime. */
  reissue(id: string, params: { ttlSeconds?: number } = {}, options: RequestOptions = {}): Promise<AdminReissueResult> {
    const body = params.ttlSeconds !== undefined ? { ttl_seconds: params.ttlSeconds } : {};
    return this.client.requestJSON(
      {
        method: 'POST',
        path: `/v1/admin/media/${encodeURIComponent(id)}/reissue`,
        body: this.client.json(body),
        retry: 'unsafe',
        admin: true,
      },
      options,
    );
  }

  /** `GET /v1/admin/media?owner=&cursor=&limit=`: one page; see {@link AdminMediaPage}. */
  async list(params: AdminListParams = {}, options: RequestOptions = {}): Promise<AdminMediaPage> {
    const response = await this.client.requestJSON<AdminMediaListResponse>(
      {
        method: 'GET',
        path: '/v1/admin/media',
        query: { owner: params.owner, cursor: params.cursor, limit: params.limit },
        retry: 'safe',
        admin: true,
      },
      options,
    );
    return new AdminMediaPage(this, params, options, response);
  }

  /** Every page, lazily: `for await (const page of client.admin.pages({ owner }))`. */
  async *pages(params: AdminListParams = {}, options: RequestOptions = {}): AsyncGenerator<AdminMediaPage> {
    yield* (await this.list(params, options)).iterPages();
  }

  /** `GET /v1/admin/usage?owner=`. */
  usage(params: { owner?: string } = {}, options: RequestOptions = {}): Promise<Usage> {
    return this.client.requestJSON(
      { method: 'GET', path: '/v1/admin/usage', query: { owner: params.owner }, retry: 'safe', admin: true },
      options,
    );
  }
}
