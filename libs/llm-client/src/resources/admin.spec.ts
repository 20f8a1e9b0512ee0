import { MediaClient } from '../client';
import { MediaClientError, UnexpectedResponseError } from '../errors';
import { BASE_URL, fakeFetch, json, MEDIA_OBJECT, type Handler } from '../testing/fake-fetch';

const ID = MEDIA_OBJECT.id;

function setup(handler: Handler | Handler[]) {
  const fake = fakeFetch(handler);
  const client = new MediaClient({
    baseURL: BASE_URL,
    serviceKey: 'svc',
    adminKey: 'adm',
    fetch: fake.fetch,
    propagator: false,
    env: {},
  });
  return { client, calls: fake.calls };
}

describe('admin resource', () => {
  it('describes an object with the admin key', async () => {
    const description = { id: ID, owner: 'u1', storage_provider: 'local', storage_key: 'k', events: [] };
    const { client, calls } = setup(() => json(200, description));
    expect(await client.admin.describe(ID)).toEqual(description);
    expect(`${calls[0]!.method} ${calls[0]!.url.pathname}`).toBe(`GET /v1/admin/media/${ID}`);
    expect(calls[0]!.headers.get('x-media-admin-key')).toBe('adm');
  });

  it('sends the admin key only to admin endpoints', async () => {
    const { client, calls } = setup(() => json(200, {}));
    await client.media.metadata(ID);
    expect(calls[0]!.headers.get('x-media-admin-key')).toBeNull();
  });

  it('purges as a dry run unless told otherwise', async () => {
    const { client, calls } = setup(() => json(200, { purged: [ID], count: 1 }));
    expect(await client.admin.purge({ ids: [ID] })).toEqual({ purged: [ID], count: 1 });
    await client.admin.purge({ expired: true, owner: 'u1', dryRun: false });
    expect(calls[0]!.url.pathname).toBe('/v1/admin/media/purge');
    expect(JSON.parse(calls[0]!.bodyText)).toEqual({ ids: [ID], dry_run: true });
    expect(JSON.parse(calls[1]!.bodyText)).toEqual({ expired: true, owner: 'u1', dry_run: false });
  });

  it('reissues with an optional ttl', async () => {
    const { client, calls } = setup(() => json(200, { id: ID, url: 'http://127.0.0.1/x', expires_at: '2030-01-01T00:00:00Z' }));
    await client.admin.reissue(ID, { ttlSeconds: 120 });
    await client.admin.reissue(ID);
    expect(`${calls[0]!.method} ${calls[0]!.url.pathname}`).toBe(`POST /v1/admin/media/${ID}/reissue`);
    expect(JSON.parse(calls[0]!.bodyText)).toEqual({ ttl_seconds: 120 });
    expect(JSON.parse(calls[1]!.bodyText)).toEqual({});
  });

  it('lists a page with owner, cursor and limit in the query', async () => {
    const { client, calls } = setup(() => json(200, { items: [{ id: ID }], next_cursor: null }));
    const page = await client.admin.list({ owner: 'u 1', limit: 5, cursor: 'c0' });
    expect(page.items).toEqual([{ id: ID }]);
    expect(page.hasNextPage()).toBe(false);
    expect(await page.getNextPage()).toBeNull();
    expect(calls[0]!.url.pathname).toBe('/v1/admin/media');
    expect(Object.fromEntries(calls[0]!.url.searchParams)).toEqual({ owner: 'u 1', cursor: 'c0', limit: '5' });
  });

  it('walks every page lazily, by pages and by items', async () => {
    const pages: Record<string, { items: Array<{ id: string }>; next_cursor: string | null }> = {
      '': { items: [{ id: 'a' }, { id: 'b' }], next_cursor: 'p2' },
      p2: { items: [{ id: 'c' }], next_cursor: 'p3' },
      p3: { items: [], next_cursor: null },
    };
    const { client, calls } = setup((request) => json(200, pages[request.url.searchParams.get('cursor') ?? '']!));
    const seen: string[][] = [];
    for await (const page of client.admin.pages({ owner: 'u1', limit: 2 })) seen.push(page.items.map((i) => i.id));
    expect(seen).toEqual([['a', 'b'], ['c'], []]);
    expect(calls.map((c) => c.url.searchParams.get('cursor'))).toEqual([null, 'p2', 'p3']);
    expect(calls.every((c) => c.url.searchParams.get('owner') === 'u1' && c.url.searchParams.get('limit') === '2')).toBe(true);

    const ids: string[] = [];
    for await (const item of await client.admin.list({ owner: 'u1' })) ids.push(item.id);
    expect(ids).toEqual(['a', 'b', 'c']);

    // Breaking out early fetches no further page.
    const before = calls.length;
    for await (const item of await client.admin.list()) {
      expect(item.id).toBe('a');
      break;
    }
    expect(calls.length).toBe(before + 1);
  });

  it.each([
    ['another JSON service', { status: 'ok' }],
    ['items that is not an array', { items: { id: ID }, next_cursor: null }],
    ['a next_cursor that is not a string', { items: [], next_cursor: 42 }],
    ['a JSON array', [{ id: ID }]],
    ['JSON null', null],
  ])('rejects a 200 holding %s instead of making up an empty page', async (_what, body) => {
    const { client } = setup(() => json(200, body));
    const listed = client.admin.list({ owner: 'u1' });
    await expect(listed).rejects.toBeInstanceOf(UnexpectedResponseError);
    await expect(client.admin.list()).rejects.toMatchObject({ code: 'unexpected_response', endpoint: 'GET /v1/admin/media' });
    await expect(client.admin.list()).rejects.toBeInstanceOf(MediaClientError);
  });

  it('rejects a later page of the wrong shape while walking, and still takes a page without next_cursor for the last', async () => {
    const { client } = setup((request) =>
      request.url.searchParams.get('cursor') ? json(200, { status: 'ok' }) : json(200, { items: [{ id: 'a' }], next_cursor: 'p2' }),
    );
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const item of await client.admin.list()) seen.push(item.id);
      })(),
    ).rejects.toBeInstanceOf(UnexpectedResponseError);
    expect(seen).toEqual(['a']);

    const last = setup(() => json(200, { items: [{ id: 'z' }] }));
    const page = await last.client.admin.list();
    expect(page.items).toEqual([{ id: 'z' }]);
    expect(page.hasNextPage()).toBe(false);
  });

  it('reads usage for an owner', async () => {
    const usage = { objects: 1, bytes: 2, quota_objects: null, quota_bytes: null };
    const { client, calls } = setup(() => json(200, usage));
    expect(await client.admin.usage({ owner: 'u1' })).toEqual(usage);
    expect(calls[0]!.url.pathname + calls[0]!.url.search).toBe('/v1/admin/usage?owner=u1');
    expect(calls[0]!.headers.get('x-media-admin-key')).toBe('adm');
  });
});
