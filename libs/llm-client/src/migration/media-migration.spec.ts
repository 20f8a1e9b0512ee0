import { MediaClient } from '../client';
import { BASE_URL, fakeFetch, json, MEDIA_OBJECT } from '../testing/fake-fetch';
import { MediaClientConfigError } from '../errors';
import { CutoverViolationError } from './cutover';
import { createMediaMigration } from './media-migration';

const ID = MEDIA_OBJECT.id;
const DATA_URL = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';
const rawBody = { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: DATA_URL } }] }] };
const refBody = { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/png;${ID}` } }] }] };

function fake() {
  return fakeFetch((request) =>
    request.url.pathname === '/v1/media/resolve' ? json(200, { payload: { resolved: true } }) : json(200, MEDIA_OBJECT),
  );
}

describe('createMediaMigration', () => {
  it('is off by default and then every helper is an identity with no network call', async () => {
    const { fetch, calls } = fake();
    const client = new MediaClient({ baseURL: BASE_URL, fetch, env: {}, propagator: false });
    for (const migration of [
      createMediaMigration({ client, env: {} }),
      createMediaMigration({ client, env: { MEDIA_CLIENT_ENABLED: 'false' } }),
      createMediaMigration({ client, enabled: false, env: { MEDIA_CLIENT_ENABLED: 'true', MEDIA_CLIENT_CUTOVER: 'enforce' } }),
    ]) {
      expect(migration.enabled).toBe(false);
      expect(migration.client).toBeNull();
      expect(await migration.dualWriteIngest(DATA_URL, { userId: 'u1' })).toEqual({ ref: null, id: null, legacyUrl: DATA_URL });
      const dual = await migration.dualWriteBody(rawBody);
      expect(dual.body).toBe(rawBody);
      expect(await migration.resolveForProvider(refBody, { provider: 'bedrock' })).toBe(refBody);
      expect(migration.validateCutover(rawBody)).toBe(rawBody);
      expect(migration.findCutoverViolations(rawBody)).toEqual([]);
    }
    expect(calls).toHaveLength(0);
  });

  it('turns on from MEDIA_CLIENT_ENABLED and builds its client from the environment', async () => {
    const { fetch, calls } = fake();
    const migration = createMediaMigration({
      env: { MEDIA_CLIENT_ENABLED: 'true', MEDIA_API_URL: BASE_URL, MEDIA_API_KEY: 'env-key' },
      clientOptions: { fetch, propagator: false },
    });
    expect(migration.enabled).toBe(true);
    expect(migration.cutover).toBe('off');
    const result = await migration.dualWriteIngest(DATA_URL, { userId: 'u1' });
    expect(result.ref).toBe(`data:image/png;${ID}`);
    expect(calls[0]!.url.origin).toBe(BASE_URL);
    expect(calls[0]!.headers.get('x-media-service-key')).toBe('env-key');
    expect(await migration.resolveForProvider(refBody, { provider: 'vertex' })).toEqual({ resolved: true });
    expect(JSON.parse(calls[1]!.bodyText).mode).toBe('inline');
  });

  it('applies the dual-write time budget and hooks from its options', async () => {
    const { fetch } = fakeFetch((request) => new Promise((_, reject) => request.init.signal!.addEventListener('abort', () => reject(request.init.signal!.reason))));
    const errors: unknown[] = [];
    const migration = createMediaMigration({
      enabled: true,
      client: new MediaClient({ baseURL: BASE_URL, fetch, env: {}, propagator: false, maxRetries: 0 }),
      dualWriteTimeoutMs: 10,
      onError: (e) => errors.push(e),
    });
    const result = await migration.dualWriteIngest(DATA_URL);
    expect(result.ref).toBeNull();
    expect(errors).toHaveLength(1);
  });

  it('uses its inline providers and latency hook for resolve', async () => {
    const { fetch, calls } = fake();
    const latencies: string[] = [];
    const migration = createMediaMigration({
      enabled: true,
      client: new MediaClient({ baseURL: BASE_URL, fetch, env: {}, propagator: false }),
      inlineProviders: ['my-local-llm'],
      onLatency: (_ms, meta) => latencies.push(meta.mode),
    });
    await migration.resolveForProvider(refBody, { provider: 'my-local-llm' });
    await migration.resolveForProvider(refBody, { provider: 'bedrock' });
    expect(calls.map((c) => JSON.parse(c.bodyText).mode)).toEqual(['inline', 'url']);
    expect(latencies).toEqual(['inline', 'url']);
  });

  it('checks the cutover per mode: off, report, enforce', () => {
    const client = new MediaClient({ baseURL: BASE_URL, fetch: fake().fetch, env: {}, propagator: false });
    const off = createMediaMigration({ enabled: true, client, env: {} });
    expect(off.validateCutover(rawBody)).toBe(rawBody);
    expect(off.findCutoverViolations(rawBody)).toHaveLength(1);

    const reported: string[][] = [];
    const report = createMediaMigration({
      enabled: true,
      client,
      env: { MEDIA_CLIENT_CUTOVER: 'report' },
      onCutoverViolation: (v) => reported.push(v.map((x) => x.path)),
    });
    expect(report.validateCutover(rawBody)).toBe(rawBody);
    expect(report.validateCutover(refBody)).toBe(refBody);
    expect(reported).toEqual([['messages[0].content[0].image_url.url']]);

    const enforce = createMediaMigration({ enabled: true, client, cutover: 'enforce' });
    expect(() => enforce.validateCutover(rawBody)).toThrow(CutoverViolationError);
    expect(enforce.validateCutover(refBody)).toBe(refBody);
  });

  it('reads a cutover mode passed as an option as it reads MEDIA_CLIENT_CUTOVER, and refuses one it does not know', () => {
    const client = new MediaClient({ baseURL: BASE_URL, fetch: fake().fetch, env: {}, propagator: false });
    // llm-api passes its own config's string through (docs/migration.md, step 4).
    const enforce = createMediaMigration({ enabled: true, client, cutover: ' Enforce ' });
    expect(enforce.cutover).toBe('enforce');
    expect(() => enforce.validateCutover(rawBody)).toThrow(CutoverViolationError);
    expect(createMediaMigration({ enabled: true, client, env: { MEDIA_CLIENT_CUTOVER: 'REPORT' } }).cutover).toBe('report');
    expect(createMediaMigration({ enabled: true, client, env: { MEDIA_CLIENT_CUTOVER: '' } }).cutover).toBe('off');
    // A typo must fail the deploy, not leave raw images accepted.
    expect(() => createMediaMigration({ enabled: true, client, cutover: 'enforced' })).toThrow(/cutover.*enforced/);
    expect(() => createMediaMigration({ enabled: true, client, env: { MEDIA_CLIENT_CUTOVER: 'enfroce' } })).toThrow(/MEDIA_CLIENT_CUTOVER.*enfroce/);
  });

  it('fails fast when enabled without a service URL', () => {
    expect(() => createMediaMigration({ enabled: true, env: {} })).toThrow(/MEDIA_API_URL/);
  });

  it('reads MEDIA_CLIENT_ENABLED like a boolean and refuses a typo instead of reading it as off', () => {
    const { fetch } = fake();
    const clientOptions = { baseURL: BASE_URL, fetch, propagator: false as const };
    for (const on of ['true', 'TRUE', ' True ', '1', 'yes', 'YES', 'on', 'On']) {
      expect(createMediaMigration({ clientOptions, env: { MEDIA_CLIENT_ENABLED: on } }).enabled).toBe(true);
    }
    for (const off of ['false', 'FALSE', ' false\n', '0', 'no', 'No', 'off', 'OFF', '', '  ']) {
      expect(createMediaMigration({ clientOptions, env: { MEDIA_CLIENT_ENABLED: off } }).enabled).toBe(false);
    }
    expect(createMediaMigration({ clientOptions, env: {} }).enabled).toBe(false);
    for (const typo of ['ture', 'yes please', 'enabled', '2', 'y', 'flase']) {
      const error = (() => {
        try {
          createMediaMigration({ clientOptions, env: { MEDIA_CLIENT_ENABLED: typo } });
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(error).toBeInstanceOf(MediaClientConfigError);
      expect((error as MediaClientConfigError).variable).toBe('MEDIA_CLIENT_ENABLED');
      expect((error as Error).message).toBe(
        `MEDIA_CLIENT_ENABLED must be true/false, 1/0, yes/no or on/off, not ${JSON.stringify(typo)}`,
      );
    }
    // An explicit option wins and the variable is not read at all.
    expect(createMediaMigration({ clientOptions, enabled: false, env: { MEDIA_CLIENT_ENABLED: 'ture' } }).enabled).toBe(false);
  });
});
