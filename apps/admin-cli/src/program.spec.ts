import { ExitCode } from './exit-codes';
import { BASE_URL, harness, ID, json, type RecordedRequest } from './testing/fake-io';

const ID2 = 'jan_01hqr8v9k2x3f4g5h6j7k8m9n1';
const ID3 = 'jan_01hqr8v9k2x3f4g5h6j7k8m9n2';

const DESCRIPTION = {
  id: ID,
  owner: 'user-1',
  mime: 'image/png',
  bytes: 2048,
  sha256: 'a'.repeat(64),
  original_sha256: 'b'.repeat(64),
  storage_provider: 'local',
  storage_key: `images/${ID}.png`,
  status: 'ready',
  pinned: false,
  filename: 'cat.png',
  created_at: '2030-01-01T00:00:00.000Z',
  retention_until: '2030-01-31T00:00:00.000Z',
  events: [
    { occurred_at: '2030-01-01T00:00:01.000Z', actor_kind: 'service', actor_id: 'llm-api', action: 'media.ingest', outcome: 'success', reason_code: null, request_id: 'req-1' },
  ],
};

const route = (request: RecordedRequest) => `${request.method} ${request.url.pathname}`;

describe('jan (in-process, scripted service)', () => {
  describe('help and usage', () => {
    it('prints help with the exit codes and exits 0', async () => {
      const h = harness(() => json(500, {}));
      expect(await h.run('--help')).toBe(ExitCode.Ok);
      expect(h.stdout.text).toContain('Usage: jan');
      expect(h.stdout.text).toMatch(/^  4 +auth/m);
      expect(await h.run('media', 'describe', '--help')).toBe(ExitCode.Ok);
      expect(h.stdout.text).toContain('Usage: jan media describe [options] <id>');
      expect(h.stdout.text).toContain('--admin-key <key>');
      expect(h.requests).toHaveLength(0);
    });

    it("shows usage's --owner as required, as the README's synopsis does", async () => {
      const h = harness(() => json(500, {}));
      expect(await h.run('media', 'usage', '--help')).toBe(ExitCode.Ok);
      expect(h.stdout.text).toContain('Usage: jan media usage --owner <user> [options]');
      expect(h.stdout.text).toMatch(/--owner <user> +owner \(user id\) to report on \(required\)/);
    });

    it('exits 2 on unknown commands, missing arguments and bad numbers, without calling the service', async () => {
      const h = harness(() => json(200, {}));
      expect(await h.run('media', 'explode')).toBe(ExitCode.Usage);
      expect(await h.run('media', 'describe')).toBe(ExitCode.Usage);
      expect(h.stderr.text).toContain("missing required argument 'id'");
      expect(await h.run('media', 'usage')).toBe(ExitCode.Usage);
      expect(h.stderr.text).toContain("required option '--owner <user>' not specified");
      expect(await h.run('media', 'ls', '--limit', 'ten')).toBe(ExitCode.Usage);
      expect(await h.run('media', 'ls', '--limit', '201')).toBe(ExitCode.Usage);
      expect(await h.run('media', 'reissue', ID, '--ttl', '0')).toBe(ExitCode.Usage);
      expect(await h.run('media', 'reissue', ID, '--ttl', String(7 * 86_400 + 1))).toBe(ExitCode.Usage);
      expect(await h.run('media', 'purge')).toBe(ExitCode.Usage);
      expect(h.stderr.text).toContain('name the ids to purge');
      expect(await h.run('media', 'purge', ID, '--yes', '--dry-run')).toBe(ExitCode.Usage);
      expect(await h.run()).toBe(ExitCode.Usage);
      expect(h.requests).toHaveLength(0);
    });

    it.each([
      ['a bad number', ['media', 'reissue', ID, '--ttl', '1.5'], '--ttl must be a whole number'],
      ['a missing required option', ['media', 'usage'], "required option '--owner <user>' not specified"],
      ['a missing argument', ['media', 'describe'], "missing required argument 'id'"],
      ['an unknown command', ['media', 'explode'], "unknown command 'explode'"],
      ['an unknown top-level command', ['explode'], "unknown command 'explode'"],
      ['an unknown option', ['media', 'ls', '--owner', 'u1', '--bogus'], "unknown option '--bogus'"],
      ['no command', ['media'], 'a command is required'],
      ['no command at all', [], 'a command is required'],
    ])('reports %s as one line of JSON on stderr with --json, and exits 2', async (_what, argv, message) => {
      for (const args of [['--json', ...argv], [...argv, '--json']]) {
        const h = harness(() => json(200, {}));
        expect(await h.run(...args)).toBe(ExitCode.Usage);
        expect(h.stdout.text).toBe('');
        const lines = h.stderr.text.split('\n').filter(Boolean);
        expect(lines).toHaveLength(1);
        const report = JSON.parse(lines[0]!);
        expect(report).toEqual({ error: expect.stringContaining(message), code: 'usage', exit_code: ExitCode.Usage });
        expect(report.error).not.toMatch(/^error:/);
        expect(h.requests).toHaveLength(0);
      }
    });

    it.each([
      ['an empty id to describe', ['media', 'describe', ''], 'a media id is required'],
      ['a blank id to describe', ['media', 'describe', ' \t '], 'a media id is required'],
      ['a blank id to reissue', ['media', 'reissue', '  '], 'a media id is required'],
      // `jan media ls --owner "$OWNER"` with OWNER unset must not list every owner's objects.
      ['an empty --owner to ls', ['media', 'ls', '--owner', ''], '--owner needs a user id'],
      ['a blank --owner to usage', ['media', 'usage', '--owner', '  '], '--owner needs a user id'],
    ])('reports %s as a usage error (exit 2) before any request, not as a wrong --url', async (_what, argv, message) => {
      const h = harness(() => json(404, { error: 'route not found', code: 'route_not_found' }));
      expect(await h.run(...argv)).toBe(ExitCode.Usage);
      expect(h.stderr.text).toBe(`error: ${message}\n`);
      const machine = harness(() => json(404, { error: 'route not found', code: 'route_not_found' }));
      expect(await machine.run(...argv, '--json')).toBe(ExitCode.Usage);
      expect(JSON.parse(machine.stderr.text)).toEqual({ error: message, code: 'usage', exit_code: ExitCode.Usage });
      expect([...h.requests, ...machine.requests]).toHaveLength(0);
    });

    it('takes a --json after `--` for an argument, not for JSON output', async () => {
      const h = harness(() => json(200, {}));
      expect(await h.run('media', 'describe', ID, '--', '--json')).toBe(ExitCode.Usage);
      expect(h.stderr.text).toMatch(/^error: too many arguments for 'describe'/);
      expect(h.requests).toHaveLength(0);
    });

    it('exits 2 without a URL and 4 without a credential', async () => {
      expect(await harness(() => json(200, {}), { env: { MEDIA_API_URL: '' } }).run('media', 'describe', ID)).toBe(ExitCode.Usage);
      const h = harness(() => json(200, {}), { env: { MEDIA_ADMIN_KEY: '' } });
      expect(await h.run('media', 'describe', ID)).toBe(ExitCode.Auth);
      expect(h.stderr.text).toContain('MEDIA_ADMIN_KEY');
    });
  });

  describe('answers it does not understand', () => {
    it.each([
      ['describe', ['media', 'describe', ID]],
      ['reissue', ['media', 'reissue', ID]],
      ['usage', ['media', 'usage', '--owner', 'u1']],
      ['purge', ['media', 'purge', ID]],
      ['purge --yes', ['media', 'purge', ID, '--yes']],
      ['ls', ['media', 'ls']],
      ['ls --all', ['media', 'ls', '--all']],
    ])('%s: a 200 of some other JSON exits 1 with code "unexpected", printing no result', async (_what, argv) => {
      const h = harness(() => json(200, { status: 'ok' }));
      expect(await h.run(...argv, '--json')).toBe(ExitCode.Unexpected);
      expect(h.stdout.text).toBe('');
      expect(JSON.parse(h.stderr.text)).toMatchObject({ code: 'unexpected', exit_code: ExitCode.Unexpected, error: expect.stringContaining('--url') });

      const human = harness(() => json(200, { status: 'ok' }));
      expect(await human.run(...argv)).toBe(ExitCode.Unexpected);
      expect(human.stdout.text).toBe('');
      expect(human.stderr.text).toMatch(/^error: unexpected answer from the \w+ endpoint/);
    });

    it.each([
      ['describe', ['media', 'describe', ID]],
      ['reissue', ['media', 'reissue', ID]],
      ['usage', ['media', 'usage', '--owner', 'u1']],
      ['purge', ['media', 'purge', ID]],
      ['ls', ['media', 'ls']],
    ])('%s: a 200 that is not JSON (a web page behind --url) exits 1 with code "unexpected", printing no result', async (_what, argv) => {
      const page = () => new Response('<html><body>Welcome</body></html>', { status: 200, headers: { 'content-type': 'text/html' } });
      const h = harness(page);
      expect(await h.run(...argv, '--json')).toBe(ExitCode.Unexpected);
      expect(h.stdout.text).toBe('');
      expect(JSON.parse(h.stderr.text)).toMatchObject({ code: 'unexpected', exit_code: ExitCode.Unexpected });
      expect(h.requests).toHaveLength(1);
    });
  });

  describe('credentials', () => {
    it('sends the admin key as X-Media-Admin-Key and never a service key from the environment', async () => {
      const h = harness(() => json(200, DESCRIPTION), { env: { MEDIA_API_KEY: 'svc' } });
      expect(await h.run('media', 'describe', ID)).toBe(ExitCode.Ok);
      expect(h.requests[0]!.headers.get('x-media-admin-key')).toBe('admin-key');
      expect(h.requests[0]!.headers.get('x-media-service-key')).toBeNull();
      expect(h.requests[0]!.headers.get('authorization')).toBeNull();
    });

    it('sends --token as a bearer token (and no key) and honours --url', async () => {
      const h = harness(() => json(200, DESCRIPTION));
      expect(await h.run('media', 'describe', ID, '--token', 'jwt-1', '--url', 'http://127.0.0.1:9999/media')).toBe(ExitCode.Ok);
      expect(h.requests[0]!.headers.get('authorization')).toBe('Bearer jwt-1');
      expect(h.requests[0]!.headers.get('x-media-admin-key')).toBeNull();
      expect(h.requests[0]!.url.href).toBe(`http://127.0.0.1:9999/media/v1/admin/media/${ID}`);
    });
  });

  describe('a token without the admin role', () => {
    const routeNotFound = () => json(404, { error: 'route not found', code: 'route_not_found', request_id: 'r-404' });

    it('exits 4 naming the missing role when the same token may read its own usage', async () => {
      const h = harness((request) =>
        request.url.pathname === '/v1/usage' ? json(200, { objects: 0, bytes: 0, quota_objects: null, quota_bytes: null }) : routeNotFound(),
      );
      expect(await h.run('media', 'describe', ID, '--token', 'user-jwt', '--json')).toBe(ExitCode.Auth);
      expect(JSON.parse(h.stderr.text)).toMatchObject({ code: 'not_admin', exit_code: ExitCode.Auth, error: expect.stringContaining('media-admin') });
      expect(h.requests.map(route)).toEqual([`GET /v1/admin/media/${ID}`, 'GET /v1/usage']);
      expect(h.requests[1]!.headers.get('authorization')).toBe('Bearer user-jwt');
    });

    it('still exits 2 with the --url hint when the URL is wrong, and never probes for an admin key', async () => {
      const token = harness(routeNotFound);
      expect(await token.run('media', 'describe', ID, '--token', 'jwt', '--retries', '0')).toBe(ExitCode.Usage);
      expect(token.stderr.text).toContain('check --url');

      const key = harness(routeNotFound);
      expect(await key.run('media', 'describe', ID)).toBe(ExitCode.Usage);
      expect(key.requests).toHaveLength(1);
    });
  });

  describe('describe', () => {
    it('prints every field and the audit events for humans', async () => {
      const h = harness(() => json(200, DESCRIPTION));
      expect(await h.run('media', 'describe', ` ${ID} `)).toBe(ExitCode.Ok);
      expect(route(h.requests[0]!)).toBe(`GET /v1/admin/media/${ID}`);
      const out = h.stdout.text;
      for (const text of ['user-1', 'image/png', '2.0 KiB (2048 bytes)', 'a'.repeat(64), 'b'.repeat(64), 'local', `images/${ID}.png`, 'ready', '2030-01-31T00:00:00Z', 'cat.png']) {
        expect(out).toContain(text);
      }
      expect(out).toMatch(/storage key\s+images\//);
      expect(out).toMatch(/pinned\s+no/);
      expect(out).toMatch(/2030-01-01T00:00:01Z\s+service:llm-api\s+media\.ingest\s+success\s+-\s+req-1/);
    });

    it('prints the service answer as is with --json', async () => {
      const h = harness(() => json(200, DESCRIPTION));
      expect(await h.run('--json', 'media', 'describe', ID)).toBe(ExitCode.Ok);
      expect(JSON.parse(h.stdout.text)).toEqual(DESCRIPTION);
      expect(h.stderr.text).toBe('');
    });

    it('exits 3 on 404 with the request id, as text or as JSON on stderr', async () => {
      const notFound = () => json(404, { error: 'media not found', code: 'media_not_found', request_id: 'req-404' });
      const text = harness(notFound);
      expect(await text.run('media', 'describe', ID)).toBe(ExitCode.NotFound);
      expect(text.stderr.text).toBe('error: media not found (request id req-404)\n');
      expect(text.stdout.text).toBe('');
      const machine = harness(notFound);
      expect(await machine.run('media', 'describe', ID, '--json')).toBe(ExitCode.NotFound);
      expect(JSON.parse(machine.stderr.text)).toEqual({ error: 'media not found', code: 'media_not_found', status: 404, request_id: 'req-404', exit_code: 3 });
    });

    it('exits 4 on 401 and 403, 5 on 5xx after retries and on connection failures', async () => {
      expect(await harness(() => json(401, { error: 'bad key', code: 'unauthorized' })).run('media', 'describe', ID)).toBe(ExitCode.Auth);
      expect(await harness(() => json(403, { message: 'You cannot consume this service' })).run('media', 'describe', ID)).toBe(ExitCode.Auth);
      const failing = harness(() => json(503, { error: 'down' }, { 'retry-after': '0' }));
      expect(await failing.run('media', 'describe', ID, '--retries', '1')).toBe(ExitCode.Server);
      expect(failing.requests).toHaveLength(2);
      const refused = harness(() => {
        throw new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:8285') });
      });
      expect(await refused.run('media', 'describe', ID, '--retries', '0')).toBe(ExitCode.Server);
      expect(refused.stderr.text).toContain('ECONNREFUSED');
    });
  });

  describe('reissue', () => {
    it('asks for a fresh URL with the given lifetime', async () => {
      const h = harness(() => json(200, { id: ID, url: `${BASE_URL}/files/x?sig=1`, expires_at: '2030-01-01T00:02:00.000Z' }));
      expect(await h.run('media', 'reissue', ID, '--ttl', '120')).toBe(ExitCode.Ok);
      expect(route(h.requests[0]!)).toBe(`POST /v1/admin/media/${ID}/reissue`);
      expect(h.requests[0]!.json).toEqual({ ttl_seconds: 120 });
      expect(h.stdout.text).toMatch(/url\s+http:\/\/127\.0\.0\.1:8285\/files\/x\?sig=1/);
      expect(h.stdout.text).toMatch(/expires\s+2030-01-01T00:02:00Z/);
      await h.run('media', 'reissue', ID);
      expect(h.requests[1]!.json).toEqual({});
    });

    it('exits 2 when the service refuses the request as invalid', async () => {
      const h = harness(() => json(400, { error: 'ttl_seconds must be …', code: 'invalid_request' }));
      expect(await h.run('media', 'reissue', ID, '--ttl', '60')).toBe(ExitCode.Usage);
    });
  });

  describe('ls', () => {
    const pages: Record<string, unknown> = {
      '': { items: [{ id: ID, owner: 'u1', mime: 'image/png', bytes: 10, status: 'ready', pinned: true, created_at: '2030-01-01T00:00:00Z', retention_until: null }], next_cursor: ID },
      [ID]: { items: [{ id: ID2, owner: 'u1', mime: 'image/jpeg', bytes: 4096, status: 'pending', pinned: false, created_at: '2030-01-02T00:00:00Z', retention_until: '2030-02-01T00:00:00Z' }], next_cursor: null },
    };
    const handler = (request: RecordedRequest) => json(200, pages[request.url.searchParams.get('cursor') ?? '']);

    it('prints one page and tells how to get the next', async () => {
      const h = harness(handler);
      expect(await h.run('media', 'ls', '--owner', 'u1', '--limit', '1')).toBe(ExitCode.Ok);
      expect(Object.fromEntries(h.requests[0]!.url.searchParams)).toEqual({ owner: 'u1', limit: '1' });
      expect(h.stdout.text.split('\n')[0]).toMatch(/^ID\s+OWNER\s+TYPE\s+SIZE\s+STATUS\s+PINNED\s+CREATED\s+RETENTION$/);
      expect(h.stdout.text).toContain(ID);
      expect(h.stdout.text).not.toContain(ID2);
      expect(h.stderr.text).toContain(`more objects: jan media ls --owner u1 --limit 1 --cursor ${ID}  (or --all)`);
    });

    it('prints a next-page command that keeps --url, --owner and --limit, quoted for a shell', async () => {
      const h = harness(() => json(200, { ...(pages[''] as object), next_cursor: "c'1 $x" }));
      const owner = `o'brien;rm -rf "$HOME" & \`id\``;
      expect(await h.run('media', 'ls', '--url', `${BASE_URL}/media api`, '--owner', owner, '--limit', '7', '--admin-key', 'secret-admin-key')).toBe(ExitCode.Ok);
      expect(h.stderr.text).toBe(
        `more objects: jan media ls --url '${BASE_URL}/media api' --owner 'o'\\''brien;rm -rf "$HOME" & \`id\`' --limit 7 --cursor 'c'\\''1 $x'  (or --all)\n`,
      );
      expect(h.stderr.text).not.toContain('secret-admin-key');
    });

    it('an answer without items is not an empty page, on any page of --all', async () => {
      const h = harness((request) => (request.url.searchParams.get('cursor') ? json(200, { status: 'ok' }) : json(200, pages[''])));
      expect(await h.run('media', 'ls', '--all', '--json')).toBe(ExitCode.Unexpected);
      expect(h.stdout.text).toBe('');
      expect(JSON.parse(h.stderr.text)).toMatchObject({ code: 'unexpected', exit_code: ExitCode.Unexpected });
    });

    it('follows cursors with --all and prints one JSON document', async () => {
      const h = harness(handler);
      expect(await h.run('media', 'ls', '--owner', 'u1', '--all', '--json')).toBe(ExitCode.Ok);
      expect(h.requests.map((r) => r.url.searchParams.get('cursor'))).toEqual([null, ID]);
      const out = JSON.parse(h.stdout.text);
      expect(out.items.map((i: { id: string }) => i.id)).toEqual([ID, ID2]);
      expect(out.next_cursor).toBeNull();
      expect(h.stderr.text).toBe('');
    });

    it('passes --cursor through and says so when a page is empty', async () => {
      const h = harness(() => json(200, { items: [], next_cursor: null }));
      expect(await h.run('media', 'ls', '--cursor', ID3)).toBe(ExitCode.Ok);
      expect(h.requests[0]!.url.searchParams.get('cursor')).toBe(ID3);
      expect(h.stdout.text).toBe('(no objects)\n');
    });
  });

  describe('usage', () => {
    it('prints usage against quotas', async () => {
      const h = harness(() => json(200, { owner: 'u1', objects: 3, bytes: 3072, quota_objects: 10, quota_bytes: 0 }));
      expect(await h.run('media', 'usage', '--owner', 'u1')).toBe(ExitCode.Ok);
      expect(route(h.requests[0]!) + h.requests[0]!.url.search).toBe('GET /v1/admin/usage?owner=u1');
      expect(h.stdout.text).toMatch(/objects\s+3 of 10 \(30%\)/);
      expect(h.stdout.text).toMatch(/bytes\s+3\.0 KiB \(3072 bytes\) of unlimited/);
    });
  });

  describe('purge', () => {
    /** A scripted purge endpoint over a set of stored ids. */
    function purgeService(stored: string[], options: { cap?: number; refused?: string[]; refusedOnce?: string[] } = {}) {
      const live = new Set(stored);
      const refused = new Set(options.refused ?? []);
      const refusedOnce = new Set(options.refusedOnce ?? []);
      return (request: RecordedRequest) => {
        const body = request.json as { ids?: string[]; dry_run: boolean };
        let matched = [...live].filter((id) => !body.ids || body.ids.includes(id));
        const truncated = options.cap !== undefined && matched.length > options.cap;
        if (options.cap !== undefined) matched = matched.slice(0, options.cap);
        if (body.dry_run) return json(200, { purged: matched, count: matched.length, dry_run: true, truncated, failed: [] });
        // The storage refuses to delete `refused` ids (`refusedOnce`: the first time): the service
        // keeps them and reports them.
        const refuses = (id: string) => refused.has(id) || refusedOnce.delete(id);
        const failedIds = matched.filter(refuses);
        const purged = matched.filter((id) => !failedIds.includes(id));
        for (const id of purged) live.delete(id);
        const failed = failedIds.map((id) => ({ id, code: 'storage_unavailable' }));
        return json(200, { purged, count: purged.length, dry_run: false, truncated, failed });
      };
    }

    it('is a dry run by default when nobody can be asked', async () => {
      const h = harness(purgeService([ID, ID2]));
      expect(await h.run('media', 'purge', ID, ID2)).toBe(ExitCode.Ok);
      expect(h.requests).toHaveLength(1);
      expect(route(h.requests[0]!)).toBe('POST /v1/admin/media/purge');
      expect(h.requests[0]!.json).toEqual({ ids: [ID, ID2], dry_run: true });
      expect(h.stdout.text).toContain('would delete 2 objects');
      expect(h.stderr.text).toContain('dry run: nothing was deleted; add --yes to delete');
      expect(h.questions).toEqual([]);
    });

    it('deletes with --yes in batches, repeating the filters', async () => {
      const h = harness(purgeService([ID, ID2, ID3]));
      expect(await h.run('media', 'purge', '--owner', 'u1', '--expired', '--yes', '--batch-size', '2', '--json')).toBe(ExitCode.Ok);
      expect(h.requests.map((r) => r.json)).toEqual([
        { expired: true, owner: 'u1', dry_run: true },
        { ids: [ID, ID2], expired: true, owner: 'u1', dry_run: false },
        { ids: [ID3], expired: true, owner: 'u1', dry_run: false },
      ]);
      expect(JSON.parse(h.stdout.text)).toEqual({ dry_run: false, count: 3, purged: [ID, ID2, ID3], not_found: [] });
    });

    it('asks on a terminal and deletes on yes', async () => {
      const h = harness(purgeService([ID]), { interactive: true, answer: 'y' });
      expect(await h.run('media', 'purge', ID)).toBe(ExitCode.Ok);
      expect(h.questions).toEqual(['Delete 1 object? This cannot be undone. [y/N] ']);
      expect(h.requests.map((r) => r.json.dry_run)).toEqual([true, false]);
      expect(h.stdout.text).toContain('deleted 1 object');
    });

    it('changes nothing and exits 6 when the answer is no', async () => {
      const h = harness(purgeService([ID]), { interactive: true, answer: 'n' });
      expect(await h.run('media', 'purge', ID)).toBe(ExitCode.Cancelled);
      expect(h.requests).toHaveLength(1);
      expect(h.stderr.text).toContain('cancelled: nothing was deleted');
    });

    it('never asks with --dry-run or --json', async () => {
      for (const flag of ['--dry-run', '--json']) {
        const h = harness(purgeService([ID]), { interactive: true, answer: 'y' });
        expect(await h.run('media', 'purge', ID, flag)).toBe(ExitCode.Ok);
        expect(h.questions).toEqual([]);
        expect(h.requests).toHaveLength(1);
      }
    });

    it('purges the ids that exist and exits 3 naming the others', async () => {
      const h = harness(purgeService([ID]));
      expect(await h.run('media', 'purge', ID, ID2.toUpperCase(), '--yes')).toBe(ExitCode.NotFound);
      expect(h.requests.map((r) => r.json)).toEqual([
        { ids: [ID, ID2], dry_run: true },
        { ids: [ID], dry_run: false },
      ]);
      expect(h.stdout.text).toContain('deleted 1 object');
      expect(h.stderr.text).toContain(`error: not found: ${ID2}`);
    });

    it('keeps going while the service caps its list, and stops when a round deletes nothing', async () => {
      const h = harness(purgeService([ID, ID2, ID3], { cap: 2 }));
      expect(await h.run('media', 'purge', '--expired', '--yes', '--json')).toBe(ExitCode.Ok);
      expect(JSON.parse(h.stdout.text).purged).toEqual([ID, ID2, ID3]);
      expect(h.requests.map((r) => r.json.dry_run)).toEqual([true, false, true, false]);

      const stuck = harness((request) => json(200, { purged: request.json.dry_run ? [ID] : [], count: 0, truncated: true }));
      expect(await stuck.run('media', 'purge', '--expired', '--yes')).toBe(ExitCode.Ok);
      expect(stuck.requests).toHaveLength(2);
    });

    it('deletes what it can, lists each refused object once, and exits 5', async () => {
      const h = harness(purgeService([ID, ID2, ID3], { cap: 2, refused: [ID] }));
      expect(await h.run('media', 'purge', '--expired', '--yes', '--json')).toBe(ExitCode.Server);
      expect(JSON.parse(h.stdout.text)).toEqual({ dry_run: false, count: 2, purged: [ID2, ID3], not_found: [], failed: [{ id: ID, code: 'storage_unavailable' }] });
      expect(JSON.parse(h.stderr.text)).toMatchObject({ code: 'purge_incomplete', exit_code: ExitCode.Server });
    });

    it('does not report an object a later round deleted after all', async () => {
      const h = harness(purgeService([ID, ID2, ID3], { cap: 2, refusedOnce: [ID] }));
      expect(await h.run('media', 'purge', '--expired', '--yes', '--json')).toBe(ExitCode.Ok);
      expect(JSON.parse(h.stdout.text)).toEqual({ dry_run: false, count: 3, purged: [ID2, ID, ID3], not_found: [] });
    });

    it('stops when a capped round deletes nothing because storage refused all of it, and says more match', async () => {
      const h = harness(purgeService([ID, ID2, ID3], { cap: 2, refused: [ID, ID2] }));
      expect(await h.run('media', 'purge', '--expired', '--yes', '--json')).toBe(ExitCode.Server);
      expect(h.requests.map((r) => r.json.dry_run)).toEqual([true, false]);
      const report = JSON.parse(h.stdout.text);
      expect(report).toMatchObject({ purged: [], truncated: true });
      expect(report.failed.map((f: { id: string }) => f.id)).toEqual([ID, ID2]);

      const human = harness(purgeService([ID, ID2, ID3], { cap: 2, refused: [ID, ID2] }));
      expect(await human.run('media', 'purge', '--expired', '--yes')).toBe(ExitCode.Server);
      expect(human.stdout.text).toBe('deleted 0 objects (more match: run it again once the storage deletes)\n');
      expect(human.stderr.text).toContain(`could not delete 2 objects now: ${ID} (storage_unavailable), ${ID2} (storage_unavailable)`);
    });

    it('on Ctrl-C finishes the batch in flight, starts no other, reports exactly what was deleted and exits 130', async () => {
      const service = purgeService([ID, ID2, ID3]);
      let h: ReturnType<typeof harness>;
      let deleteCalls = 0;
      h = harness(
        async (request) => {
          const answer = await service(request);
          // Ctrl-C while the first delete batch is in flight.
          if (request.json.dry_run === false && ++deleteCalls === 1) expect(h.interrupt()).toBe(true);
          return answer;
        },
        { ttyStderr: true },
      );
      expect(await h.run('media', 'purge', '--owner', 'u1', '--yes', '--batch-size', '1')).toBe(ExitCode.Interrupted);
      expect(h.requests.map((r) => r.json.dry_run)).toEqual([true, false]);
      expect(h.stdout.text).toBe('deleted 1 object, then stopped (interrupted)\n');
      expect(h.stderr.text).toContain('interrupted: stopping after the batch in flight');
      expect(h.stderr.text).toContain('error: interrupted: deleted 1 object; the rest were not deleted (run the same command again to continue)');
      // The bar was stopped (cli-progress shows the cursor again) before anything else was written.
      expect(h.stderr.text).toContain('\u001b[?25h');

      const machine = harness(async (request) => {
        const answer = await service(request);
        if (request.json.dry_run === false) machine.interrupt();
        return answer;
      });
      expect(await machine.run('media', 'purge', '--owner', 'u1', '--yes', '--batch-size', '1', '--json')).toBe(ExitCode.Interrupted);
      expect(JSON.parse(machine.stdout.text)).toEqual({ dry_run: false, count: 1, purged: [ID2], not_found: [], interrupted: true });
      expect(JSON.parse(machine.stderr.text)).toMatchObject({ code: 'interrupted', exit_code: ExitCode.Interrupted });
    });

    it('on Ctrl-C during the last batch reports the purge as completed, not interrupted, and exits 0', async () => {
      const service = purgeService([ID, ID2, ID3]);
      let deleteCalls = 0;
      const h = harness(async (request) => {
        const answer = await service(request);
        // Ctrl-C while the last delete batch is in flight: nothing is left for it to stop.
        if (request.json.dry_run === false && ++deleteCalls === 3) expect(h.interrupt()).toBe(true);
        return answer;
      });
      expect(await h.run('media', 'purge', '--owner', 'u1', '--yes', '--batch-size', '1')).toBe(ExitCode.Ok);
      expect(h.requests.map((r) => r.json.dry_run)).toEqual([true, false, false, false]);
      expect(h.stdout.text).toBe('deleted 3 objects\n');
      expect(h.stderr.text).toBe(
        'interrupted: stopping after the batch in flight (Ctrl-C again to quit at once)\n' +
          'interrupted too late to stop anything: the purge had completed\n',
      );

      let machineDeletes = 0;
      const machineService = purgeService([ID, ID2, ID3]);
      const machine = harness(async (request) => {
        const answer = await machineService(request);
        if (request.json.dry_run === false && ++machineDeletes === 3) machine.interrupt('SIGTERM');
        return answer;
      });
      expect(await machine.run('media', 'purge', '--owner', 'u1', '--yes', '--batch-size', '1', '--json')).toBe(ExitCode.Ok);
      const report = JSON.parse(machine.stdout.text);
      expect(report).toEqual({ dry_run: false, count: 3, purged: expect.any(Array), not_found: [] });
      expect([...report.purged].sort()).toEqual([ID, ID2, ID3].sort());
      expect(machine.stderr.text).toBe('');
    });

    it('on SIGTERM stops like on Ctrl-C, reports exactly what was deleted and exits 143', async () => {
      const service = purgeService([ID, ID2, ID3]);
      const h = harness(async (request) => {
        const answer = await service(request);
        if (request.json.dry_run === false) h.interrupt('SIGTERM');
        return answer;
      });
      expect(await h.run('media', 'purge', '--owner', 'u1', '--yes', '--batch-size', '1')).toBe(ExitCode.Terminated);
      expect(h.requests.map((r) => r.json.dry_run)).toEqual([true, false]);
      expect(h.stdout.text).toBe('deleted 1 object, then stopped (terminated (SIGTERM))\n');
      expect(h.stderr.text).toContain('terminated (SIGTERM): stopping after the batch in flight (SIGTERM again to quit at once)');
      expect(h.stderr.text).toContain('error: terminated (SIGTERM): deleted 1 object; the rest were not deleted');

      const machine = harness(async (request) => {
        const answer = await service(request);
        if (request.json.dry_run === false) machine.interrupt('SIGTERM');
        return answer;
      });
      expect(await machine.run('media', 'purge', '--owner', 'u1', '--yes', '--batch-size', '1', '--json')).toBe(ExitCode.Terminated);
      expect(JSON.parse(machine.stdout.text)).toEqual({ dry_run: false, count: 1, purged: [ID2], not_found: [], interrupted: true });
      expect(JSON.parse(machine.stderr.text)).toMatchObject({ code: 'interrupted', exit_code: ExitCode.Terminated });
    });

    it('when the reader of stdout goes away mid-purge, stops after the batch in flight, reports on stderr and exits 141', async () => {
      const service = purgeService([ID, ID2, ID3]);
      const h = harness(async (request) => {
        const answer = await service(request);
        if (request.json.dry_run === false) expect(h.closePipe('stdout')).toBe(true);
        return answer;
      });
      expect(await h.run('media', 'purge', '--owner', 'u1', '--yes', '--batch-size', '1')).toBe(ExitCode.BrokenPipe);
      expect(h.requests.map((r) => r.json.dry_run)).toEqual([true, false]);
      expect(h.stdout.text).toBe('');
      expect(h.stderr.text).toBe(
        'deleted 1 object, then stopped (the reader of stdout went away)\n' +
          'error: the reader of stdout went away: the report above is on stderr instead\n',
      );

      const machineService = purgeService([ID, ID2, ID3]);
      const machine = harness(async (request) => {
        const answer = await machineService(request);
        if (request.json.dry_run === false) machine.closePipe('stdout');
        return answer;
      });
      expect(await machine.run('media', 'purge', '--owner', 'u1', '--yes', '--batch-size', '1', '--json')).toBe(ExitCode.BrokenPipe);
      expect(machine.stdout.text).toBe('');
      const lines = machine.stderr.text.split('\n').filter(Boolean);
      expect(lines).toHaveLength(1);
      expect(JSON.parse(lines[0]!)).toEqual({
        error: expect.stringContaining('the reader of stdout went away'),
        code: 'broken_pipe',
        exit_code: ExitCode.BrokenPipe,
        report: { dry_run: false, count: 1, purged: [ID], not_found: [], interrupted: true },
      });
    });

    it('on SIGHUP (the terminal closed) stops like on Ctrl-C, reports exactly what was deleted where the output goes, and exits 129', async () => {
      const service = purgeService([ID, ID2, ID3]);
      const h = harness(async (request) => {
        const answer = await service(request);
        if (request.json.dry_run === false) h.interrupt('SIGHUP');
        return answer;
      });
      expect(await h.run('media', 'purge', '--owner', 'u1', '--yes', '--batch-size', '1')).toBe(ExitCode.HangUp);
      expect(h.requests.map((r) => r.json.dry_run)).toEqual([true, false]);
      expect(h.stdout.text).toBe('deleted 1 object, then stopped (hung up (SIGHUP))\n');
      expect(h.stderr.text).toContain('hung up (SIGHUP): stopping after the batch in flight (SIGHUP again to quit at once)');
      expect(h.stderr.text).toContain('error: hung up (SIGHUP): deleted 1 object; the rest were not deleted');

      const machineService = purgeService([ID, ID2, ID3]);
      const machine = harness(async (request) => {
        const answer = await machineService(request);
        if (request.json.dry_run === false) machine.interrupt('SIGHUP');
        return answer;
      });
      expect(await machine.run('media', 'purge', '--owner', 'u1', '--yes', '--batch-size', '1', '--json')).toBe(ExitCode.HangUp);
      expect(JSON.parse(machine.stdout.text)).toMatchObject({ dry_run: false, count: 1, not_found: [], interrupted: true });
      expect(JSON.parse(machine.stderr.text)).toMatchObject({ code: 'interrupted', exit_code: ExitCode.HangUp });
    });

    it('with --json, a failing batch still reports exactly what was deleted before it', async () => {
      const service = purgeService([ID, ID2, ID3], { refused: [ID] });
      let calls = 0;
      const h = harness((request) => (++calls === 4 ? json(503, { error: 'storage down', code: 'storage_unavailable' }) : service(request)));
      expect(await h.run('media', 'purge', ID, ID2, ID3, 'jan_01hqr8v9k2x3f4g5h6j7k8m9zz', '--yes', '--batch-size', '1', '--retries', '0', '--json')).toBe(
        ExitCode.Server,
      );
      expect(JSON.parse(h.stdout.text)).toEqual({
        dry_run: false,
        count: 1,
        purged: [ID2],
        not_found: ['jan_01hqr8v9k2x3f4g5h6j7k8m9zz'],
        failed: [{ id: ID, code: 'storage_unavailable' }],
        aborted: true,
      });
      expect(JSON.parse(h.stderr.text)).toMatchObject({ code: 'storage_unavailable', status: 503, exit_code: ExitCode.Server });

      // A failure before the first delete: nothing was deleted, and the report says so.
      const first = harness((request) => (request.json.dry_run ? purgeService([ID])(request) : json(500, { error: 'boom', code: 'internal' })));
      expect(await first.run('media', 'purge', ID, '--yes', '--retries', '0', '--json')).toBe(ExitCode.Server);
      expect(JSON.parse(first.stdout.text)).toEqual({ dry_run: false, count: 0, purged: [], not_found: [], aborted: true });
    });

    it('listens for Ctrl-C only while deleting', async () => {
      const h = harness(purgeService([ID]));
      expect(await h.run('media', 'purge', ID, '--yes')).toBe(ExitCode.Ok);
      expect(h.interrupt()).toBe(false);
    });

    it('draws a progress bar on a terminal only, and reports progress when a batch fails', async () => {
      const service = purgeService([ID, ID2, ID3]);
      let calls = 0;
      const h = harness(
        (request) => {
          calls++;
          return calls === 3 ? json(500, { error: 'disk on fire', code: 'internal' }) : service(request);
        },
        { ttyStderr: true },
      );
      expect(await h.run('media', 'purge', '--owner', 'u1', '--yes', '--batch-size', '1', '--retries', '0')).toBe(ExitCode.Server);
      expect(h.stderr.text).toContain('purging [');
      expect(h.stderr.text).toContain('deleted 1 object before the failure');
      expect(h.stderr.text).toContain('error: disk on fire');

      const piped = harness(purgeService([ID, ID2]));
      expect(await piped.run('media', 'purge', '--owner', 'u1', '--yes')).toBe(ExitCode.Ok);
      expect(piped.stderr.text).not.toContain('purging [');
    });
  });
});
