import { MediaEvents } from '@jan/domain';
import { startTestApp, type TestApp } from '../support/test-app';
import { dataUrl, noisyPng, pngImage, uniqueUser } from '../support/images';
import { statedExpiry } from '@jan/domain/testing';

/** Resolve as llm-api uses it: one database query per request, cached URLs, inline mode. */
describe('resolve', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ env: { MEDIA_RESOLVE_INLINE: 'true', MEDIA_RESOLVE_INLINE_MAX_IMAGE_BYTES: '64KiB' } });
  });
  afterAll(async () => {
    await app?.close();
  });

  async function upload(user: string, seed: number): Promise<{ id: string; bytes: Buffer }> {
    const bytes = await pngImage(seed);
    const res = await app.call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(bytes) } }) });
    return { id: ((await res.json()) as any).id, bytes };
  }

  function chat(ids: string[]): unknown {
    return {
      model: 'gpt-x',
      messages: Array.from({ length: 50 }, (_, i) => ({
        role: i % 2 ? 'assistant' : 'user',
        content:
          i % 5 === 0
            ? [
                { type: 'text', text: `message ${i}` },
                { type: 'image_url', image_url: { url: i % 10 === 0 ? `data:image/png;${ids[i % ids.length]}` : `data:image/png;base64,${ids[i % ids.length]}` } },
              ]
            : `message ${i}`,
      })),
    };
  }

  it('sends exactly one SQL statement for a 50-message payload with 10 placeholders of 3 ids', async () => {
    const user = uniqueUser();
    const ids = [(await upload(user, 1)).id, (await upload(user, 2)).id, (await upload(user, 3)).id];
    // The uploads' audit entries are written in the background, in batches: let them land first.
    await (app.running.app.get(MediaEvents) as MediaEvents & { flush(): Promise<void> }).flush();
    const statements: string[] = [];
    const stop = app.running.database.onQuery((sql: string) => statements.push(sql));
    const countOf = (metrics: string) => Number(/^media_db_statement_duration_seconds_count\{statement="media_by_ids",outcome="ok"\} (\d+)$/m.exec(metrics)?.[1] ?? 0);
    const before = countOf(await (await fetch(`${app.baseUrl}/metrics`)).text());
    try {
      const res = await app.call('/v1/media/resolve', { method: 'POST', user, body: JSON.stringify({ payload: chat(ids) }) });
      expect(res.status).toBe(200);
      const text = JSON.stringify(await res.json());
      expect(text).not.toMatch(/data:image\/png;(base64,)?jan_/);
    } finally {
      stop();
    }
    expect(statements).toHaveLength(1);
    // …and it is timed, by name, in the statement histogram.
    expect(countOf(await (await fetch(`${app.baseUrl}/metrics`)).text())).toBe(before + 1);
  });

  it('reports expires_in as the TTL for a freshly signed URL, agreeing with expires_at and the URL; a cached one its time left', async () => {
    const TTL = 900; // MEDIA_PRESIGN_TTL's default
    const user = uniqueUser();
    const ingested = (await (await app.call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(await pngImage(4711)) } }) })).json()) as any;
    const attachment = (await (await app.call(`/v1/media/${ingested.id}/presign?download=1`, { user })).json()) as any;
    for (const fresh of [ingested, attachment]) {
      expect(fresh.expires_in).toBe(TTL);
      expect(Date.parse(fresh.expires_at)).toBe(statedExpiry(fresh.url).getTime());
      expect(Date.parse(fresh.expires_at) - Date.now()).toBeLessThanOrEqual(TTL * 1000);
    }
    // The ingest's URL again, from the cache: whole seconds left, rounded up, never more than the TTL.
    const cached = (await (await app.call(`/v1/media/${ingested.id}/presign`, { user })).json()) as any;
    const now = Date.now();
    expect(cached.url).toBe(ingested.url);
    expect(cached.expires_at).toBe(ingested.expires_at);
    expect(cached.expires_in).toBeLessThanOrEqual(TTL);
    expect(Date.parse(cached.expires_at) - now).toBeLessThanOrEqual(cached.expires_in * 1000);
    expect(Date.parse(cached.expires_at) - now).toBeGreaterThan((cached.expires_in - 2) * 1000);
    const resolved = (await (await app.call('/v1/media/resolve', { method: 'POST', user, body: JSON.stringify({ ids: [ingested.id] }) })).json()) as any;
    expect(resolved.media[0]).toMatchObject({ url: ingested.url, expires_at: ingested.expires_at });
  });

  it('hands out the same URL while the cached one is fresh (stable URLs for provider caches)', async () => {
    const user = uniqueUser();
    const { id } = await upload(user, 10);
    const once = ((await (await app.call('/v1/media/resolve', { method: 'POST', user, body: JSON.stringify({ ids: [id] }) })).json()) as any).media[0];
    const twice = ((await (await app.call('/v1/media/resolve', { method: 'POST', user, body: JSON.stringify({ ids: [id] }) })).json()) as any).media[0];
    expect(twice.presigned_url).toBe(once.presigned_url);
    const metrics = await (await fetch(`${app.baseUrl}/metrics`)).text();
    expect(Number(/media_presign_cache_hits (\d+)/.exec(metrics)?.[1])).toBeGreaterThan(0);
  });

  it('inlines images as data URLs in inline mode, within the per-image cap', async () => {
    const user = uniqueUser();
    const { id, bytes } = await upload(user, 20);
    const res = await app.call('/v1/media/resolve', { method: 'POST', user, body: JSON.stringify({ payload: { u: `data:image/png;${id}` }, mode: 'inline' }) });
    expect(((await res.json()) as any).payload.u).toBe(`data:image/png;base64,${bytes.toString('base64')}`);

    const big = await noisyPng(256);
    const bigId = ((await (await app.call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(big) } }) })).json()) as any).id;
    const tooBig = await app.call('/v1/media/resolve', { method: 'POST', user, body: JSON.stringify({ ids: [bigId], mode: 'inline' }) });
    expect(tooBig.status).toBe(413);
    expect(((await tooBig.json()) as any).code).toBe('inline_too_large');
  });

  it("refuses another user's placeholder, or leaves it untouched when asked", async () => {
    const owner = uniqueUser();
    const { id } = await upload(owner, 30);
    const mallory = uniqueUser();
    const payload = { messages: [{ content: [{ image_url: { url: `data:image/png;${id}` } }] }] };
    const refused = await app.call('/v1/media/resolve', { method: 'POST', user: mallory, body: JSON.stringify({ payload }) });
    expect(refused.status).toBe(404);
    expect(((await refused.json()) as any).details.ids).toEqual([id]);
    const kept = await app.call('/v1/media/resolve', { method: 'POST', user: mallory, body: JSON.stringify({ payload, keep_unresolved: true }) });
    expect(await kept.json()).toEqual({ payload, unresolved: [id] });
  });
  it('refuses a placeholder whose id is not a media id, as the ids form does, or lists it under keep_unresolved', async () => {
    // `jan_` + 26 letters and digits not followed by more: placeholder-shaped, but no id (a
    // timestamp past the ULID range; i, l, o and u are not Crockford base32). Passing them on
    // silently sent a provider `data:image/png;jan_…` for an image.
    const user = uniqueUser();
    const { id } = await upload(user, 60);
    const bad = ['jan_8zzzzzzzzzzzzzzzzzzzzzzzzz', 'jan_01m8g7apbpx4chg24v4eqkvilo'];
    const payload = { a: `data:image/png;${bad[0]}`, b: [`see data:image/jpeg;base64,${bad[1]}!`], c: `data:image/png;${id}` };
    const refused = await app.call('/v1/media/resolve', { method: 'POST', user, body: JSON.stringify({ payload }) });
    expect(refused.status).toBe(404);
    expect(await refused.json()).toMatchObject({ code: 'media_not_found', details: { ids: bad } });

    const kept = await app.call('/v1/media/resolve', { method: 'POST', user, body: JSON.stringify({ payload, keep_unresolved: true }) });
    expect(kept.status).toBe(200);
    const body = (await kept.json()) as any;
    expect(body.unresolved).toEqual(bad);
    expect(body.payload).toMatchObject({ a: payload.a, b: payload.b });
    expect(body.payload.c).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:\\d+/v1/files/images/${id}\\.png\\?`));
  });

  it('takes base64 padding after the id as part of the placeholder: the value becomes exactly the URL', async () => {
    const user = uniqueUser();
    const { id } = await upload(user, 61);
    const payload = { plain: `data:image/png;${id}`, one: `data:image/png;base64,${id}=`, two: `data:image/png;base64,${id}==`, short: `data:image/png;${id}=` };
    const res = await app.call('/v1/media/resolve', { method: 'POST', user, body: JSON.stringify({ payload }) });
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body.payload.plain).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:\\d+/v1/files/images/${id}\\.png\\?`));
    expect(body.payload).toEqual({ plain: body.payload.plain, one: body.payload.plain, two: body.payload.plain, short: body.payload.plain });
    // The signed URL answers with the image, not a signature error from a trailing `=`.
    expect((await fetch(body.payload.two)).status).toBe(200);
  });

  it('refuses a placeholder whose id has the wrong length or characters, keeps it under keep_unresolved, and leaves mere data:image/ text alone', async () => {
    const user = uniqueUser();
    const { id } = await upload(user, 62);
    const payload = {
      short: 'data:image/png;jan_abc',
      padded: 'DATA:IMAGE/WEBP;BASE64,JAN_ABC==',
      long: `see data:image/png;${id}0!`,
      mine: `data:image/png;${id}`,
      text: 'a data:image/png;base64,iVBORw0KGgo= URL; data:image/svg+xml;charset=utf-8,jan_x; data:text/plain;jan_abc',
    };
    const refused = await app.call('/v1/media/resolve', { method: 'POST', user, body: JSON.stringify({ payload }) });
    expect(refused.status).toBe(404);
    expect(await refused.json()).toMatchObject({ code: 'media_not_found', details: { ids: ['jan_abc', 'JAN_ABC', `${id}0`] } });

    const kept = await app.call('/v1/media/resolve', { method: 'POST', user, body: JSON.stringify({ payload, keep_unresolved: true }) });
    expect(kept.status).toBe(200);
    const body = (await kept.json()) as any;
    expect(body.unresolved).toEqual(['jan_abc', 'JAN_ABC', `${id}0`]);
    expect(body.payload).toMatchObject({ short: payload.short, padded: payload.padded, long: payload.long, text: payload.text });
    expect(body.payload.mine).toMatch(/^http:/);

    const plain = await app.call('/v1/media/resolve', { method: 'POST', user, body: JSON.stringify({ payload: { text: payload.text } }) });
    expect(plain.status).toBe(200);
    expect(await plain.json()).toEqual({ payload: { text: payload.text } });

    // The ids form answers malformed ids the same way, each listed once.
    const ids = await app.call('/v1/media/resolve', { method: 'POST', user, body: JSON.stringify({ ids: ['jan_abc', id, 'jan_abc', `${id}==`] }) });
    expect(ids.status).toBe(404);
    expect(await ids.json()).toMatchObject({ code: 'media_not_found', details: { ids: ['jan_abc', `${id}==`] } });
  });

  it('keeps owners apart when their concurrent resolves share a lookup', async () => {
    // Lookups made in the same turn share one statement; access is still decided per request.
    const alice = uniqueUser();
    const bob = uniqueUser();
    const mallory = uniqueUser();
    const [a, b] = [await upload(alice, 50), await upload(bob, 51)];
    const resolve = (user: string, id: string) =>
      app.call('/v1/media/resolve', { method: 'POST', user, body: JSON.stringify({ payload: { u: `data:image/png;${id}` } }) });
    const lookups: string[] = [];
    const stop = app.running.database.onQuery((sql: string) => {
      if (/FROM media_api\.media_objects WHERE id = /.test(sql)) lookups.push(sql);
    });
    let answers: Array<{ status: number; body: any }>;
    try {
      const calls = Array.from({ length: 10 }, () => [resolve(alice, a.id), resolve(bob, b.id), resolve(mallory, a.id), resolve(bob, a.id)]).flat();
      answers = await Promise.all(calls.map(async (call) => {
        const res = await call;
        return { status: res.status, body: (await res.json()) as any };
      }));
    } finally {
      stop();
    }
    // Never more than one lookup per request, however the requests fell into turns.
    expect(lookups.length).toBeGreaterThanOrEqual(1);
    expect(lookups.length).toBeLessThanOrEqual(40);

    for (let i = 0; i < answers.length; i += 4) {
      const [mine, his, stolen, borrowed] = answers.slice(i, i + 4);
      expect(mine.status).toBe(200);
      expect(mine.body.payload.u).toContain(a.id);
      expect(his.status).toBe(200);
      expect(his.body.payload.u).toContain(b.id);
      for (const refused of [stolen, borrowed]) {
        expect(refused.status).toBe(404);
        expect(refused.body).toMatchObject({ code: 'media_not_found', details: { ids: [a.id] } });
      }
    }
    const image = await fetch(answers[1].body.payload.u);
    expect(Buffer.from(await image.arrayBuffer()).equals(b.bytes)).toBe(true);
  });

  it('answers with the payload\'s own bytes, only the placeholders swapped (big numbers, 1.0, escapes, spacing)', async () => {
    const user = uniqueUser();
    const { id } = await upload(user, 40);
    const head = '{ "seed": 12345678901234567890, "temperature": 1.0, "z": -0, "e": 1E+2, "t": "caf\\u00e9 \\/ 🚀",\n  "__proto__": {"constructor": {"prototype": 1}},';
    const body = `{"payload": ${head} "u": "data:image/png;${id}" } }`;
    const res = await app.call('/v1/media/resolve', { method: 'POST', user, body });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const text = await res.text();
    expect(text.startsWith(`{"payload":${head} "u": "`)).toBe(true);
    const url = (JSON.parse(text) as { payload: { u: string } }).payload.u;
    expect(text).toBe(`{"payload":${head} "u": ${JSON.stringify(url)} }}`);
    const image = await fetch(url);
    expect(image.status).toBe(200);
  });

  it.each([
    ['malformed JSON', 'application/json', '{"payload": {"a": 1,}}', 'invalid_request'],
    ['a JSON array', 'application/json', '[{"payload": 1}]', 'invalid_request'],
    ['an empty body', 'application/json', '', 'invalid_request'],
    ['text/plain', 'text/plain', '{"payload": {}}', 'invalid_request'],
    ['an unknown mode', 'application/json', '{"payload": {}, "mode": "data"}', 'invalid_request'],
    ['ids that are not strings', 'application/json', '{"ids": [1, null, {}]}', 'invalid_request'],
    ['both ids and a payload', 'application/json', '{"ids": [], "payload": {}}', 'invalid_request'],
  ])('refuses %s with 400 and a stable code', async (_what, type, body, code) => {
    const res = await app.call('/v1/media/resolve', { method: 'POST', user: uniqueUser(), body, headers: { 'content-type': type } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).code).toBe(code);
  });

  it('refuses malformed UTF-8 and says where it stopped', async () => {
    const body = Buffer.concat([Buffer.from('{"payload": {"t": "ab'), Buffer.from([0xc3, 0x28]), Buffer.from('"}}')]);
    const res = await app.call('/v1/media/resolve', { method: 'POST', user: uniqueUser(), body, headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 'invalid_request', details: { offset: 22 } });
  });
});

describe('inline resolve under its per-request cap', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ env: { MEDIA_RESOLVE_INLINE: 'true', MEDIA_RESOLVE_INLINE_MAX_IMAGE_BYTES: '64KiB', MEDIA_RESOLVE_INLINE_MAX_REQUEST_BYTES: '128KiB' } });
  });
  afterAll(async () => {
    await app?.close();
  });

  it('counts every occurrence of one image, as the data URL the answer would carry', async () => {
    const user = uniqueUser();
    const png = await noisyPng(96);
    const inlined = dataUrl(png);
    expect(png.length).toBeLessThan(32 * 1024);
    const created = await app.call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'data_url', data_url: inlined } }) });
    const { id } = (await created.json()) as any;
    const payload = (n: number) => JSON.stringify({ payload: { messages: Array.from({ length: n }, () => ({ url: `data:image/png;${id}` })) }, mode: 'inline' });

    const fits = Math.floor((128 * 1024) / inlined.length);
    const ok = await app.call('/v1/media/resolve', { method: 'POST', user, body: payload(fits) });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as any).payload.messages).toEqual(Array.from({ length: fits }, () => ({ url: inlined })));

    // One image, named once more than fits: refused, though its bytes alone are under the cap.
    const over = await app.call('/v1/media/resolve', { method: 'POST', user, body: payload(fits + 1) });
    expect(over.status).toBe(413);
    // Which cap was hit is in the answer: no image is over its own cap, the request is over by this much.
    expect(await over.json()).toMatchObject({
      code: 'inline_too_large',
      details: { ids: [], max_request_bytes: 128 * 1024, request_bytes: (fits + 1) * inlined.length },
    });
    const many = await app.call('/v1/media/resolve', { method: 'POST', user, body: payload(60) });
    expect(many.status).toBe(413);
  });
});

describe('resolve on a server without inline mode', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(async () => {
    await app?.close();
  });

  it('refuses mode inline whatever the payload holds, placeholders or none', async () => {
    // It answered 200 while the payload had no placeholder, then 400 once one appeared.
    for (const payload of ['no image here', { messages: [{ content: 'hi' }] }, 'data:image/png;jan_01m8g7apbpx4chg24v4eqkv798']) {
      const res = await app.call('/v1/media/resolve', { method: 'POST', user: uniqueUser(), body: JSON.stringify({ payload, mode: 'inline' }) });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ code: 'invalid_request', error: expect.stringContaining('MEDIA_RESOLVE_INLINE') });
    }
    const url = await app.call('/v1/media/resolve', { method: 'POST', user: uniqueUser(), body: JSON.stringify({ payload: 'no image here', mode: 'url' }) });
    expect(url.status).toBe(200);
    expect(await url.json()).toEqual({ payload: 'no image here' });
  });
});
