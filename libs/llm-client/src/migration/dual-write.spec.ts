import { MediaClient } from '../client';
import { APIConnectionError, APIConnectionTimeoutError, APIUserAbortError, BadRequestError, InternalServerError } from '../errors';
import { BASE_URL, fakeFetch, fakeSleep, hang, json, MEDIA_OBJECT, type Handler } from '../testing/fake-fetch';
import { findCutoverViolations } from './cutover';
import { dualWriteBody, dualWriteIngest } from './dual-write';

const ID = MEDIA_OBJECT.id;
const DATA_URL = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';

function setup(handler: Handler | Handler[], timeoutMs = 30_000) {
  const fake = fakeFetch(handler);
  const client = new MediaClient({ baseURL: BASE_URL, serviceKey: 'k', fetch: fake.fetch, propagator: false, env: {}, maxRetries: 0, timeoutMs });
  return { client, calls: fake.calls };
}

describe('dualWriteIngest', () => {
  it('ingests a data URL and returns the jan reference next to the legacy URL', async () => {
    const { client, calls } = setup(() => json(200, { ...MEDIA_OBJECT, deduped: true }));
    const result = await dualWriteIngest(client, DATA_URL, { userId: 'u1', filename: 'a.png' });
    expect(result).toEqual({ ref: `data:image/png;${ID}`, id: ID, legacyUrl: DATA_URL, deduped: true });
    expect(JSON.parse(calls[0]!.bodyText)).toEqual({ source: { type: 'data_url', data_url: DATA_URL }, filename: 'a.png' });
    expect(calls[0]!.headers.get('x-jan-user-id')).toBe('u1');
  });

  it('ingests an http(s) URL as a remote source', async () => {
    const { client, calls } = setup(() => json(200, { ...MEDIA_OBJECT, mime: 'image/jpeg' }));
    const result = await dualWriteIngest(client, 'https://example.com/cat.jpg');
    expect(result.ref).toBe(`data:image/jpeg;${ID}`);
    expect(JSON.parse(calls[0]!.bodyText)).toEqual({ source: { type: 'remote_url', url: 'https://example.com/cat.jpg' } });
  });

  it('passes an existing placeholder through without a call', async () => {
    const { client, calls } = setup(() => json(200, MEDIA_OBJECT));
    const result = await dualWriteIngest(client, `data:image/PNG;base64,${ID.toUpperCase()}`);
    expect(result).toEqual({ ref: `data:image/png;${ID}`, id: ID, legacyUrl: `data:image/PNG;base64,${ID.toUpperCase()}` });
    expect(calls).toHaveLength(0);
  });

  it.each([
    ['a server error', () => json(500, { error: 'boom' }), InternalServerError],
    ['a rejection', () => json(400, { error: 'unknown source type', code: 'unknown_source_type' }), BadRequestError],
    [
      'a connection failure',
      () => {
        throw new TypeError('fetch failed');
      },
      APIConnectionError,
    ],
  ])('never throws on %s: reports it through onError and the result', async (_label, handler, ErrorClass) => {
    const { client } = setup(handler as Handler);
    const errors: unknown[] = [];
    const result = await dualWriteIngest(client, DATA_URL, { onError: (e) => errors.push(e) });
    expect(result.ref).toBeNull();
    expect(result.id).toBeNull();
    expect(result.legacyUrl).toBe(DATA_URL);
    expect(result.error).toBeInstanceOf(ErrorClass);
    expect(errors).toEqual([result.error]);
  });

  it('never throws on a timeout, an unsupported input, or a throwing hook', async () => {
    const { client } = setup(hang);
    const timedOut = await dualWriteIngest(client, DATA_URL, { timeoutMs: 10 });
    expect(timedOut.error).toBeInstanceOf(APIConnectionError);
    const odd = await dualWriteIngest(client, 'ftp://example.com/x.png', {
      onError: () => {
        throw new Error('hook broke');
      },
    });
    expect(odd.ref).toBeNull();
    expect(String(odd.error)).toMatch(/neither a data: URL nor an http\(s\) URL/);
  });
});

describe('dualWriteIngest time budget', () => {
  it('is one deadline over every attempt: retries do not each get the whole budget', async () => {
    const fake = fakeFetch(hang);
    const { sleep } = fakeSleep();
    const client = new MediaClient({ baseURL: BASE_URL, fetch: fake.fetch, propagator: false, env: {}, maxRetries: 5, sleep });
    const result = await dualWriteIngest(client, DATA_URL, { timeoutMs: 30 });
    expect(result.error).toBeInstanceOf(APIConnectionTimeoutError);
    expect((result.error as Error).message).toBe('Dual-write gave up after its 30 ms budget.');
    expect(fake.calls).toHaveLength(1);
  });

  it('cuts the wait between retries short when the budget runs out', async () => {
    const fake = fakeFetch(() => json(503, { error: 'busy', code: 'storage_unavailable' }));
    // A 60 s backoff that only the deadline's signal can end.
    const client = new MediaClient({ baseURL: BASE_URL, fetch: fake.fetch, propagator: false, env: {}, retry: { initialDelayMs: 60_000 } });
    const started = Date.now();
    const result = await dualWriteIngest(client, DATA_URL, { timeoutMs: 30 });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(result.error).toBeInstanceOf(APIConnectionTimeoutError);
    expect(fake.calls).toHaveLength(1);
  });

  it("reports the caller's own abort as such, not as the budget running out", async () => {
    const { client } = setup(hang);
    const controller = new AbortController();
    const pending = dualWriteIngest(client, DATA_URL, { timeoutMs: 60_000, signal: controller.signal });
    controller.abort();
    expect((await pending).error).toBeInstanceOf(APIUserAbortError);
  });
});

describe('dualWriteBody', () => {
  it('leaves the original untouched when its parts are class instances, not plain objects', async () => {
    // Built by a typed message builder: JSON sends their own fields, as it does a plain object's.
    class ImageUrl {
      constructor(readonly url: string) {}
    }
    class ImagePart {
      readonly type = 'image_url';
      constructor(readonly image_url: ImageUrl) {}
    }
    const part = new ImagePart(new ImageUrl(DATA_URL));
    const body = { messages: [{ role: 'user', content: [part] }] };
    const { client } = setup(() => json(200, MEDIA_OBJECT));
    const result = await dualWriteBody(client, body);
    expect(result.legacyBody).toBe(body);
    // The legacy body is the fallback: it must still carry the image, not the placeholder.
    expect(part.image_url.url).toBe(DATA_URL);
    expect(JSON.parse(JSON.stringify(result.body))).toEqual({
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;${ID}` } }] }],
    });
  });

  it('replaces every ingested image, keeps failed ones, and leaves the original untouched', async () => {
    const body = {
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'two images' },
            { type: 'image_url', image_url: { url: DATA_URL } },
            { type: 'image_url', image_url: { url: 'https://example.com/missing.png' } },
            { type: 'image_url', image_url: { url: `data:image/png;${ID}` } },
          ],
        },
      ],
    };
    const snapshot = structuredClone(body);
    const { client, calls } = setup((request) =>
      JSON.parse(request.bodyText).source.type === 'data_url'
        ? json(200, MEDIA_OBJECT)
        : json(422, { error: 'fetch failed', code: 'remote_fetch_failed' }),
    );
    const errors: unknown[] = [];
    const result = await dualWriteBody(client, body, { userId: 'u1', onError: (e) => errors.push(e) });
    expect(calls).toHaveLength(2);
    expect(result.legacyBody).toBe(body);
    expect(body).toEqual(snapshot);
    expect(result.body.messages[0]!.content[1]).toEqual({ type: 'image_url', image_url: { url: `data:image/png;${ID}` } });
    expect(result.body.messages[0]!.content[2]).toEqual(body.messages[0]!.content[2]);
    expect(result.images.map((i) => [i.path, i.ref])).toEqual([
      ['messages[0].content[1].image_url.url', `data:image/png;${ID}`],
      ['messages[0].content[2].image_url.url', null],
    ]);
    expect(errors).toHaveLength(1);
  });

  it('returns the body itself when there is nothing to ingest', async () => {
    const { client, calls } = setup(() => json(200, MEDIA_OBJECT));
    const body = { messages: [{ role: 'user', content: 'hello' }] };
    const result = await dualWriteBody(client, body);
    expect(result.body).toBe(body);
    expect(result.images).toEqual([]);
    expect(calls).toHaveLength(0);
  });
});

describe('dualWriteBody over the image positions the cutover check knows', () => {
  const PNG_BASE64 = DATA_URL.slice(DATA_URL.indexOf(',') + 1);
  // Every request answers with the object whose mime the data URL declared, as the service would.
  const ingestAnswer: Handler = (request) => {
    const source = JSON.parse(request.bodyText).source;
    const mime = source.type === 'data_url' ? /^data:([^;,]*)/.exec(source.data_url)![1] || 'image/png' : 'image/jpeg';
    return json(200, { ...MEDIA_OBJECT, mime });
  };

  it('ingests an Anthropic-style base64 block as a data URL of its media_type and keeps the block shape', async () => {
    const body = {
      model: 'claude-sonnet-4',
      messages: [
        { role: 'user', content: 'first turn' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'a' },
            { type: 'text', text: 'b' },
            { type: 'text', text: 'c' },
            { type: 'text', text: 'd' },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: PNG_BASE64 } },
          ],
        },
      ],
    };
    const snapshot = structuredClone(body);
    const { client, calls } = setup(ingestAnswer);
    const result = await dualWriteBody(client, body, { userId: 'u1' });

    expect(calls).toHaveLength(1);
    expect(JSON.parse(calls[0]!.bodyText).source).toEqual({ type: 'data_url', data_url: `data:image/png;base64,${PNG_BASE64}` });
    expect(result.images).toEqual([
      { path: 'messages[1].content[4].source.data', ref: `data:image/png;${ID}`, id: ID, legacyUrl: PNG_BASE64, deduped: false },
    ]);
    expect(result.body.messages[1]!.content[4]).toEqual({
      type: 'image',
      source: { type: 'base64', media_type: 'image/png', data: `data:image/png;${ID}` },
    });
    expect(body).toEqual(snapshot);
    // The path dual-write reports is the one the cutover check flags, and the rewritten body passes.
    expect(findCutoverViolations(body).map((v) => [v.path, v.kind])).toEqual([['messages[1].content[4].source.data', 'raw_base64']]);
    expect(findCutoverViolations(result.body)).toEqual([]);
  });

  it('ingests Anthropic url sources and base64 without a media_type', async () => {
    const body = {
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image', source: { type: 'url', url: 'https://example.com/cat.jpg' } },
            { type: 'image', source: { type: 'base64', data: PNG_BASE64 } },
          ],
        },
      ],
    };
    const { client, calls } = setup(ingestAnswer);
    const result = await dualWriteBody(client, body, { concurrency: 1 });
    expect(calls.map((c) => JSON.parse(c.bodyText).source)).toEqual([
      { type: 'remote_url', url: 'https://example.com/cat.jpg' },
      { type: 'data_url', data_url: `data:;base64,${PNG_BASE64}` },
    ]);
    expect(result.body.messages[0]!.content[0]!.source).toEqual({ type: 'url', url: `data:image/jpeg;${ID}` });
    expect(result.images.map((i) => i.path)).toEqual(['messages[0].content[0].source.url', 'messages[0].content[1].source.data']);
    expect(findCutoverViolations(result.body)).toEqual([]);
  });

  it('ingests Gemini inline_data images (both spellings) as data URLs of their mime_type and keeps the part shape', async () => {
    const pdf = { inline_data: { mime_type: 'application/pdf', data: 'JVBERi0xLjQK' } };
    const body = {
      contents: [
        {
          role: 'user',
          parts: [
            { text: 'what is this?' },
            { inline_data: { mime_type: 'image/png', data: PNG_BASE64 } },
            { inlineData: { mimeType: 'image/webp', data: PNG_BASE64 } },
            pdf,
            { inline_data: { mime_type: 'image/png', data: `data:image/png;${ID}` } },
          ],
        },
      ],
      generationConfig: { temperature: 0 },
    };
    const snapshot = structuredClone(body);
    const { client, calls } = setup(ingestAnswer);
    const result = await dualWriteBody(client, body, { userId: 'u1', concurrency: 1 });

    expect(calls.map((c) => JSON.parse(c.bodyText).source)).toEqual([
      { type: 'data_url', data_url: `data:image/png;base64,${PNG_BASE64}` },
      { type: 'data_url', data_url: `data:image/webp;base64,${PNG_BASE64}` },
    ]);
    expect(result.images).toEqual([
      { path: 'contents[0].parts[1].inline_data.data', ref: `data:image/png;${ID}`, id: ID, legacyUrl: PNG_BASE64, deduped: false },
      { path: 'contents[0].parts[2].inlineData.data', ref: `data:image/webp;${ID}`, id: ID, legacyUrl: PNG_BASE64, deduped: false },
    ]);
    expect(result.body.contents[0]!.parts).toEqual([
      { text: 'what is this?' },
      { inline_data: { mime_type: 'image/png', data: `data:image/png;${ID}` } },
      { inlineData: { mimeType: 'image/webp', data: `data:image/webp;${ID}` } },
      pdf,
      { inline_data: { mime_type: 'image/png', data: `data:image/png;${ID}` } },
    ]);
    expect(result.body.generationConfig).toEqual({ temperature: 0 });
    expect(body).toEqual(snapshot);
    // The same positions the cutover check reports; the rewritten body passes it.
    expect(findCutoverViolations(body).map((v) => v.path)).toEqual(result.images.map((i) => i.path));
    expect(findCutoverViolations(result.body)).toEqual([]);
  });

  it('leaves Gemini file_data parts alone: placeholders are references already, provider file URIs are not for it to fetch', async () => {
    const body = {
      contents: [
        {
          role: 'user',
          parts: [
            { file_data: { mime_type: 'image/png', file_uri: `data:image/png;${ID}` } },
            { fileData: { mimeType: 'image/png', fileUri: 'https://generativelanguage.googleapis.com/v1beta/files/abc' } },
            { file_data: { mime_type: 'image/jpeg', file_uri: 'https://example.com/cat.jpg' } },
          ],
        },
      ],
    };
    const { client, calls } = setup(ingestAnswer);
    const result = await dualWriteBody(client, body, { userId: 'u1' });
    expect(calls).toEqual([]);
    expect(result.images).toEqual([]);
    expect(result.body).toEqual(body);
    expect(findCutoverViolations(body)).toEqual([]);
  });

  it('lists every image position the cutover check reports, in the OpenAI chat and Responses shapes too', async () => {
    const body = {
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image_url', image_url: { url: DATA_URL, detail: 'high' } },
            { type: 'image_url', image_url: 'https://example.com/a.png' },
            { type: 'input_image', image_url: DATA_URL },
            { type: 'image_url', image_url: { url: 'file:///etc/passwd' } },
            { type: 'image', source: { type: 'base64', media_type: 'image/webp', data: PNG_BASE64 } },
            { type: 'image_url', image_url: { url: `data:image/png;${ID}` } },
          ],
        },
      ],
    };
    const { client, calls } = setup(ingestAnswer);
    const errors: unknown[] = [];
    const result = await dualWriteBody(client, body, { onError: (e) => errors.push(e) });
    const imagePositions = findCutoverViolations(body).map((v) => v.path);
    expect(result.images.map((i) => i.path)).toEqual(imagePositions);
    expect(calls).toHaveLength(4);
    expect(result.images.map((i) => i.ref)).toEqual([
      `data:image/png;${ID}`,
      `data:image/jpeg;${ID}`,
      `data:image/png;${ID}`,
      null,
      `data:image/webp;${ID}`,
    ]);
    expect(String(result.images[3]!.error)).toMatch(/neither a data: URL nor an http\(s\) URL/);
    expect(errors).toHaveLength(1);
    expect(result.body.messages[0]!.content[0]).toEqual({ type: 'image_url', image_url: { url: `data:image/png;${ID}`, detail: 'high' } });
    expect(findCutoverViolations(result.body).map((v) => v.path)).toEqual(['messages[0].content[3].image_url.url']);
  });
});
