import { MediaClient } from '../client';
import { InternalServerError, NotFoundError, PayloadTooLargeError } from '../errors';
import { BASE_URL, fakeFetch, json, type Handler } from '../testing/fake-fetch';
import { chooseResolveMode, providerOf, resolveForProvider, resolveForProviderResult, type ResolveLatencyMeta } from './resolve-for-provider';

const ID = 'jan_01hqr8v9k2x3f4g5h6j7k8m9n0';
const withPlaceholder = {
  model: 'bedrock/anthropic.claude-3-5-sonnet',
  messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;${ID}` } }] }],
};
const resolvedBody = {
  ...withPlaceholder,
  messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] }],
};

function setup(handler: Handler | Handler[] = (request) => json(200, { payload: resolvedBody, echo: request.bodyText })) {
  const fake = fakeFetch(handler);
  const client = new MediaClient({ baseURL: BASE_URL, serviceKey: 'k', fetch: fake.fetch, propagator: false, env: {}, maxRetries: 0 });
  return { client, calls: fake.calls };
}

describe('chooseResolveMode', () => {
  it('inlines for Bedrock, Vertex, Gemini and local runtimes; URLs for the rest', () => {
    for (const p of ['bedrock', 'Bedrock', 'vertex', 'vertex_ai', 'gemini', 'ollama', 'bedrock/claude', 'vertex:eu']) {
      expect(chooseResolveMode(p)).toBe('inline');
    }
    for (const p of ['openai', 'anthropic', 'azure', 'groq', undefined, '']) expect(chooseResolveMode(p)).toBe('url');
  });

  it('uses a custom list', () => {
    expect(chooseResolveMode('openai', ['openai'])).toBe('inline');
    expect(chooseResolveMode('bedrock', ['openai'])).toBe('url');
  });

  it('reads the provider from a model prefix when none is given', () => {
    expect(providerOf({ model: 'vertex_ai/gemini-2.0' })).toBe('vertex_ai');
    expect(providerOf({ model: 'gpt-4o' })).toBeUndefined();
    expect(providerOf({ model: 'vertex_ai/gemini' }, 'openai')).toBe('openai');
    expect(providerOf(null)).toBeUndefined();
  });
});

describe('resolveForProvider', () => {
  describe('a bare placeholder with more than two = of padding', () => {
    // The service reads `data:image/png;jan_<id>===` as one malformed placeholder: 404 media_not_found,
    // or left as it is and listed (padding included) under keep_unresolved. Not a placeholder inside
    // a longer string, which the SDK refuses to send.
    const padded = `data:image/png;${ID}===`;
    const body = { model: 'gpt-4o', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: padded } }] }] };

    it('is sent to the service, whose 404 comes back as NotFoundError', async () => {
      const { client, calls } = setup(() => json(404, { error: 'media not found', code: 'media_not_found', details: { ids: [`${ID}===`] } }));
      await expect(resolveForProvider(client, body, { provider: 'openai' })).rejects.toBeInstanceOf(NotFoundError);
      expect(calls).toHaveLength(1);
      expect(JSON.parse(calls[0]!.bodyText)).toEqual({ payload: body, mode: 'url' });
    });

    it('is kept and reported under keepUnresolved, as the service lists it', async () => {
      const { client, calls } = setup((request) => json(200, { payload: JSON.parse(request.bodyText).payload, unresolved: [`${ID}===`] }));
      const reported: string[][] = [];
      const out = await resolveForProviderResult(client, body, { provider: 'openai', keepUnresolved: true, onUnresolved: (ids) => reported.push(ids) });
      expect(out).toEqual({ payload: body, unresolved: [`${ID}===`] });
      expect(reported).toEqual([[`${ID}===`]]);
      expect(JSON.parse(calls[0]!.bodyText)).toEqual({ payload: body, mode: 'url', keep_unresolved: true });
    });
  });

  it('asks for inline mode for an inline provider, acting for the user, and reports latency', async () => {
    const { client, calls } = setup();
    const latencies: Array<[number, ResolveLatencyMeta]> = [];
    const out = await resolveForProvider(client, withPlaceholder, {
      provider: 'bedrock',
      userId: 'u1',
      onLatency: (ms, meta) => latencies.push([ms, meta]),
    });
    expect(out).toEqual(resolvedBody);
    expect(JSON.parse(calls[0]!.bodyText)).toEqual({ payload: withPlaceholder, mode: 'inline' });
    expect(calls[0]!.headers.get('x-jan-user-id')).toBe('u1');
    expect(latencies).toHaveLength(1);
    expect(latencies[0]![0]).toBeGreaterThanOrEqual(0);
    expect(latencies[0]![1]).toEqual({ provider: 'bedrock', mode: 'inline', called: true, ok: true });
  });

  it('asks for URLs for other providers, and takes the provider from the model', async () => {
    const { client, calls } = setup();
    await resolveForProvider(client, withPlaceholder, { provider: 'openai' });
    await resolveForProvider(client, withPlaceholder);
    await resolveForProvider(client, withPlaceholder, { provider: 'openai', mode: 'inline', keepUnresolved: true });
    expect(JSON.parse(calls[0]!.bodyText).mode).toBe('url');
    expect(JSON.parse(calls[1]!.bodyText).mode).toBe('inline');
    expect(JSON.parse(calls[2]!.bodyText)).toMatchObject({ mode: 'inline', keep_unresolved: true });
  });

  it('skips the call for a body without placeholders and returns it as is', async () => {
    const { client, calls } = setup();
    const plain = { model: 'gpt-4o', messages: [{ role: 'user', content: 'hi jan_ data: nothing' }] };
    const metas: ResolveLatencyMeta[] = [];
    expect(await resolveForProvider(client, plain, { onLatency: (_, m) => metas.push(m) })).toBe(plain);
    expect(calls).toHaveLength(0);
    expect(metas).toEqual([{ provider: undefined, mode: 'url', called: false, ok: true }]);
  });

  it('calls the service for a placeholder written in upper case, as the service resolves it', async () => {
    const { client, calls } = setup();
    for (const url of [`data:image/png;${ID.toUpperCase()}`, `DATA:IMAGE/PNG;BASE64,JAN_${ID.slice(4)}`, `data:image/png;Jan_${ID.slice(4)}`]) {
      const body = { model: 'gpt-4o', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }] }] };
      expect(await resolveForProvider(client, body)).toEqual(resolvedBody);
    }
    expect(calls).toHaveLength(3);
  });

  it('throws the service error after reporting it to the hook', async () => {
    const { client } = setup(() => json(500, { error: 'db down', code: 'database_unavailable' }));
    const metas: ResolveLatencyMeta[] = [];
    await expect(
      resolveForProvider(client, withPlaceholder, { provider: 'openai', onLatency: (_, m) => metas.push(m) }),
    ).rejects.toBeInstanceOf(InternalServerError);
    expect(metas[0]).toMatchObject({ called: true, ok: false });
    expect(metas[0]!.error).toBeInstanceOf(InternalServerError);
  });

  it('is not broken by a throwing latency hook', async () => {
    const { client } = setup();
    await expect(
      resolveForProvider(client, withPlaceholder, {
        onLatency: () => {
          throw new Error('metrics down');
        },
      }),
    ).resolves.toEqual(resolvedBody);
  });
});

describe('resolveForProvider with Anthropic-style image blocks', () => {
  const OTHER = 'jan_01hqr8v9k2x3f4g5h6j7k8m9n1';
  const SIGNED = `http://127.0.0.1:8285/v1/media/${ID}?exp=1&sig=abc`;
  const BYTES = 'iVBORw0KGgo=';

  // What the service does: swap every placeholder found in a string, knowing nothing of shapes.
  function service(unresolved: string[] = []): Handler {
    return (request) => {
      const { payload, mode } = JSON.parse(request.bodyText);
      const text = JSON.stringify(payload).replace(/data:(image\/[a-z0-9.+-]+);(?:base64,)?(jan_[0-9a-z]{26})/g, (whole, mime, id) =>
        unresolved.includes(id) ? whole : mode === 'inline' ? `data:${mime};base64,${BYTES}` : SIGNED.replace(ID, id),
      );
      return json(200, { payload: JSON.parse(text) });
    };
  }

  const body = {
    model: 'claude-sonnet-4',
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'see' },
          // As dualWriteBody writes it: the base64 block keeps its shape, the reference in data.
          { type: 'image', source: { type: 'base64', media_type: 'image/png', data: `data:image/png;${ID}` } },
          // As a client may send it after the cutover.
          { type: 'image', source: { type: 'url', url: `data:image/jpeg;${OTHER}` }, cache_control: { type: 'ephemeral' } },
          { type: 'image_url', image_url: { url: `data:image/png;${ID}` } },
        ],
      },
    ],
  };

  it('gives URL sources in URL mode', async () => {
    const snapshot = structuredClone(body);
    const { client } = setup(service());
    const out = await resolveForProvider(client, body, { provider: 'anthropic' });
    expect(out.messages[0]!.content.slice(1)).toEqual([
      { type: 'image', source: { type: 'url', url: SIGNED } },
      { type: 'image', source: { type: 'url', url: SIGNED.replace(ID, OTHER) }, cache_control: { type: 'ephemeral' } },
      { type: 'image_url', image_url: { url: SIGNED } },
    ]);
    expect(body).toEqual(snapshot);
  });

  it('gives base64 sources with the media type of the bytes in inline mode', async () => {
    const { client } = setup(service());
    const out = await resolveForProvider(client, body, { provider: 'bedrock' });
    expect(out.messages[0]!.content.slice(1)).toEqual([
      { type: 'image', source: { type: 'base64', media_type: 'image/png', data: BYTES } },
      { type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: BYTES }, cache_control: { type: 'ephemeral' } },
      { type: 'image_url', image_url: { url: `data:image/png;base64,${BYTES}` } },
    ]);
  });

  it('leaves placeholders the service kept unresolved, and blocks that held none, as they are', async () => {
    const raw = { type: 'image', source: { type: 'base64', media_type: 'image/png', data: BYTES } };
    const withRaw = { ...body, messages: [{ role: 'user', content: [...body.messages[0]!.content, raw] }] };
    const { client } = setup(service([ID]));
    const out = await resolveForProvider(client, withRaw, { provider: 'anthropic', keepUnresolved: true });
    expect(out.messages[0]!.content[1]).toEqual(body.messages[0]!.content[1]);
    expect(out.messages[0]!.content[2]!.source).toEqual({ type: 'url', url: SIGNED.replace(ID, OTHER) });
    expect(out.messages[0]!.content[4]).toEqual(raw);
  });
});

describe('resolveForProvider with Gemini-native parts', () => {
  const OTHER = 'jan_01hqr8v9k2x3f4g5h6j7k8m9n1';
  const SIGNED = `http://127.0.0.1:8285/v1/media/${ID}?exp=1&sig=abc`;
  const BYTES = 'iVBORw0KGgo=';
  // The stored objects' real types: inline answers carry these, whatever the placeholder said.
  const REAL: Record<string, string> = { [ID]: 'image/png', [OTHER]: 'image/webp' };

  // What the service does: swap every placeholder found in a string, knowing nothing of shapes.
  function service(unresolved: string[] = []): Handler {
    return (request) => {
      const { payload, mode } = JSON.parse(request.bodyText);
      const text = JSON.stringify(payload).replace(/data:(image\/[a-z0-9.+-]+);(?:base64,)?(jan_[0-9a-z]{26})/g, (whole, _mime, id) =>
        unresolved.includes(id) ? whole : mode === 'inline' ? `data:${REAL[id]};base64,${BYTES}` : SIGNED.replace(ID, id),
      );
      return json(200, { payload: JSON.parse(text) });
    };
  }

  const body = {
    systemInstruction: { parts: [{ text: 'be brief' }] },
    contents: [
      { role: 'user', parts: [{ text: 'earlier turn' }] },
      {
        role: 'user',
        parts: [
          { text: 'compare' },
          // REST spelling, short placeholder form, a type that is not the stored one.
          { inline_data: { mime_type: 'image/jpeg', data: `data:image/jpeg;${ID}` } },
          // The JS SDK's spelling, base64 placeholder form.
          { inlineData: { mimeType: 'image/webp', data: `data:image/webp;base64,${OTHER}` } },
          { inline_data: { mime_type: 'application/pdf', data: 'JVBERi0xLjQK' } },
        ],
      },
    ],
    generationConfig: { temperature: 0, responseMimeType: 'text/plain' },
  };
  const expectedParts = [
    { text: 'compare' },
    { inline_data: { mime_type: 'image/png', data: BYTES } },
    { inlineData: { mimeType: 'image/webp', data: BYTES } },
    { inline_data: { mime_type: 'application/pdf', data: 'JVBERi0xLjQK' } },
  ];

  it('gives bare base64 and the stored type in inline mode, in one call, keys and the rest untouched', async () => {
    const snapshot = structuredClone(body);
    const { client, calls } = setup(service());
    const out = await resolveForProvider(client, body, { provider: 'gemini' });
    expect(calls).toHaveLength(1);
    expect(JSON.parse(calls[0]!.bodyText)).toEqual({ payload: body, mode: 'inline' });
    expect(out).toEqual({ ...body, contents: [body.contents[0], { role: 'user', parts: expectedParts }] });
    expect(Object.keys(out.contents[1]!.parts[2]!)).toEqual(['inlineData']);
    expect(Object.keys(out.contents[1]!.parts[2]!.inlineData!)).toEqual(['mimeType', 'data']);
    expect(body).toEqual(snapshot);
  });

  it('resolves inline_data inline in URL mode too, in a call of its own; the rest of the body keeps URL mode', async () => {
    const mixed = {
      ...body,
      contents: [...body.contents, { role: 'user', parts: [{ text: `see data:image/png;${OTHER}` }] }],
    };
    const snapshot = structuredClone(mixed);
    const { client, calls } = setup(service());
    const out = await resolveForProvider(client, mixed, { provider: 'openai', userId: 'u1' });
    const sent = calls.map((c) => JSON.parse(c.bodyText));
    expect(sent).toHaveLength(2);
    const inlineCall = sent.find((c) => c.mode === 'inline');
    const urlCall = sent.find((c) => c.mode === 'url');
    // Only the inline_data placeholders count against the inline caps.
    expect(inlineCall.payload).toEqual([`data:image/jpeg;${ID}`, `data:image/webp;base64,${OTHER}`]);
    expect(urlCall.payload.contents[1].parts[1]).toEqual({ inline_data: { mime_type: 'image/jpeg', data: '' } });
    expect(calls.every((c) => c.headers.get('x-jan-user-id') === 'u1')).toBe(true);
    expect(out.contents[1]!.parts).toEqual(expectedParts);
    expect(out.contents[2]!.parts[0]!.text).toBe(`see ${SIGNED.replace(ID, OTHER)}`);
    expect(out.generationConfig).toEqual(body.generationConfig);
    expect(mixed).toEqual(snapshot);
  });

  it('makes only the inline call in URL mode when inline_data holds every placeholder', async () => {
    const { client, calls } = setup(service());
    const out = await resolveForProvider(client, body, { mode: 'url' });
    expect(calls.map((c) => JSON.parse(c.bodyText).mode)).toEqual(['inline']);
    expect(out.contents[1]!.parts).toEqual(expectedParts);
  });

  it('leaves placeholders the service kept unresolved as they are, in both modes', async () => {
    for (const provider of ['vertex', 'openai']) {
      const { client } = setup(service([ID]));
      const out = await resolveForProvider(client, body, { provider, keepUnresolved: true });
      expect(out.contents[1]!.parts[1]).toEqual(body.contents[1]!.parts[1]);
      expect(out.contents[1]!.parts[2]).toEqual(expectedParts[2]);
    }
  });

  it('throws the inline caps error of the service after reporting it, in URL mode too', async () => {
    const tooLarge = () => json(413, { error: 'images too large to inline; use url mode', code: 'inline_too_large' });
    for (const provider of ['gemini', 'openai']) {
      const { client } = setup(tooLarge);
      const metas: ResolveLatencyMeta[] = [];
      const error = await resolveForProvider(client, body, { provider, onLatency: (_, m) => metas.push(m) }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PayloadTooLargeError);
      expect((error as PayloadTooLargeError).code).toBe('inline_too_large');
      expect(metas).toEqual([expect.objectContaining({ called: true, ok: false, error })]);
    }
  });

  it('cancels the other call in URL mode once one fails: its answer could no longer be used', async () => {
    const mixed = { ...body, contents: [...body.contents, { role: 'user', parts: [{ text: `see data:image/png;${OTHER}` }] }] };
    const inlineSignals: AbortSignal[] = [];
    const { client, calls } = setup(async (request, index) => {
      if (JSON.parse(request.bodyText).mode === 'url') return json(404, { error: 'not found', code: 'media_not_found' });
      inlineSignals.push(request.init.signal!);
      // The inline answer (every image's bytes) is slow to come; it is never read.
      await new Promise((resolve) => setTimeout(resolve, 100));
      return service()(request, index);
    });
    const error = await resolveForProvider(client, mixed, { mode: 'url' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 404, code: 'media_not_found' });
    expect(calls).toHaveLength(2);
    expect(inlineSignals).toHaveLength(1);
    expect(inlineSignals[0]!.aborted).toBe(true);
  });

  describe('file_data parts holding a placeholder', () => {
    const fileBody = {
      contents: [
        {
          role: 'user',
          parts: [
            { text: 'describe' },
            // REST spelling; the part's other keys stay, the declared type is not the stored one.
            { file_data: { mime_type: 'image/jpeg', file_uri: `data:image/jpeg;${ID}` }, video_metadata: { fps: 1 } },
            // The JS SDK's spelling, base64 placeholder form, no declared type.
            { fileData: { fileUri: `data:image/webp;base64,${OTHER}` } },
            // Not a placeholder: the provider's own files stay as they are.
            { file_data: { mime_type: 'image/png', file_uri: 'https://generativelanguage.googleapis.com/v1beta/files/abc' } },
            { fileData: { mimeType: 'image/png', fileUri: 'gs://bucket/x.png' } },
          ],
        },
      ],
      generationConfig: { temperature: 0 },
    };
    const expectedFileParts = [
      { text: 'describe' },
      { inline_data: { mime_type: 'image/png', data: BYTES }, video_metadata: { fps: 1 } },
      { inlineData: { mimeType: 'image/webp', data: BYTES } },
      fileBody.contents[0]!.parts[3],
      fileBody.contents[0]!.parts[4],
    ];

    it('become inline_data parts (same spelling family) with bare base64 and the stored type in inline mode', async () => {
      const snapshot = structuredClone(fileBody);
      const { client, calls } = setup(service());
      const out = await resolveForProvider(client, fileBody, { provider: 'gemini' });
      expect(calls.map((c) => JSON.parse(c.bodyText))).toEqual([{ payload: fileBody, mode: 'inline' }]);
      expect(out.contents[0]!.parts).toEqual(expectedFileParts);
      // The part keeps its key order, the new blob has Gemini's own field order.
      expect(Object.keys(out.contents[0]!.parts[1]!)).toEqual(['inline_data', 'video_metadata']);
      const parts = out.contents[0]!.parts as unknown as Array<Record<string, object>>;
      expect(Object.keys(parts[1]!['inline_data']!)).toEqual(['mime_type', 'data']);
      expect(Object.keys(parts[2]!['inlineData']!)).toEqual(['mimeType', 'data']);
      expect(out.generationConfig).toEqual(fileBody.generationConfig);
      expect(fileBody).toEqual(snapshot);
    });

    it('are resolved inline in URL mode too, beside inline_data parts, in the one inline call; the rest keeps URL mode', async () => {
      const mixed = {
        contents: [
          ...fileBody.contents,
          { role: 'user', parts: [body.contents[1]!.parts[1], { text: `see data:image/png;${ID}` }] },
        ],
      };
      const snapshot = structuredClone(mixed);
      const { client, calls } = setup(service());
      const out = await resolveForProvider(client, mixed, { provider: 'openai' });
      const sent = calls.map((c) => JSON.parse(c.bodyText));
      expect(sent.map((c) => c.mode).sort()).toEqual(['inline', 'url']);
      expect(sent.find((c) => c.mode === 'inline').payload).toEqual([`data:image/jpeg;${ID}`, `data:image/webp;base64,${OTHER}`, `data:image/jpeg;${ID}`]);
      expect(sent.find((c) => c.mode === 'url').payload.contents[0].parts[1].file_data).toEqual({ mime_type: 'image/jpeg', file_uri: '' });
      expect(out.contents[0]!.parts).toEqual(expectedFileParts);
      expect(out.contents[1]!.parts).toEqual([expectedParts[1], { text: `see ${SIGNED}` }]);
      expect(mixed).toEqual(snapshot);
    });

    it('stay file_data parts, untouched, when the service keeps the placeholder unresolved', async () => {
      for (const mode of ['inline', 'url'] as const) {
        const { client } = setup(service([ID]));
        const out = await resolveForProvider(client, fileBody, { mode, keepUnresolved: true });
        expect(out.contents[0]!.parts[1]).toEqual(fileBody.contents[0]!.parts[1]);
        expect(out.contents[0]!.parts[2]).toEqual(expectedFileParts[2]);
      }
    });

    it('throw the inline caps error of the service in URL mode too', async () => {
      // The caps apply to inline calls only: a URL-mode resolve of the same placeholders would pass.
      const capped: Handler = (request, index) =>
        JSON.parse(request.bodyText).mode === 'inline'
          ? json(413, { error: 'images too large to inline; use url mode', code: 'inline_too_large' })
          : service()(request, index);
      const { client } = setup(capped);
      const error = await resolveForProvider(client, fileBody, { mode: 'url' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PayloadTooLargeError);
      expect((error as PayloadTooLargeError).code).toBe('inline_too_large');
    });
  });
});
