import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import type { IncomingHttpHeaders } from 'node:http';
import { DomainError } from '@jan/domain';
import { Logger } from '@nestjs/common';
import { SafeRemoteFetcher, type ConnectRequest, type Connector, type ResolvedAddress } from './safe-remote-fetcher';

/** Answers from a table keyed by URL; never opens a socket. */
class ScriptedConnector {
  readonly calls: ConnectRequest[] = [];
  readonly routes = new Map<string, (request: ConnectRequest) => { status: number; headers?: IncomingHttpHeaders; body?: Readable | Buffer }>();

  readonly connect: Connector = async (request) => {
    this.calls.push(request);
    const route = this.routes.get(request.url.href);
    if (!route) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const { status, headers = {}, body = Buffer.alloc(0) } = route(request);
    return { status, headers, body: Buffer.isBuffer(body) ? Readable.from([body]) : body };
  };
}

const PUBLIC = '93.184.216.34';
const dns: Record<string, ResolvedAddress[]> = {
  'images.example': [{ address: PUBLIC, family: 4 }],
  'v6.example': [{ address: '2606:4700::1', family: 6 }],
  'metadata.test': [{ address: '169.254.169.254', family: 4 }],
  'private.test': [{ address: '10.0.0.5', family: 4 }],
  'cgnat.test': [{ address: '100.64.1.1', family: 4 }],
  'ula.test': [{ address: 'fd00::1', family: 6 }],
  'mapped.test': [{ address: '::ffff:169.254.169.254', family: 6 }],
  'mixed.test': [
    { address: PUBLIC, family: 4 },
    { address: '127.0.0.1', family: 4 },
  ],
  'two.example': [
    { address: '93.184.216.35', family: 4 },
    { address: PUBLIC, family: 4 },
  ],
};
const resolver = async (host: string) => {
  const found = dns[host];
  if (!found) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  return found;
};

function setup(options: Partial<ConstructorParameters<typeof SafeRemoteFetcher>[0]> = {}) {
  const connector = new ScriptedConnector();
  const fetcher = new SafeRemoteFetcher({ timeoutMs: 2000, resolver, connector: connector.connect, ...options });
  return { connector, fetcher };
}

async function failureOf(promise: Promise<unknown>): Promise<DomainError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DomainError);
  return error as DomainError;
}

describe('SafeRemoteFetcher (injected resolver and connector)', () => {
  it('fetches a public host through the checked address, with the host name kept for Host/SNI', async () => {
    const { connector, fetcher } = setup();
    connector.routes.set('https://images.example/cat.png', () => ({ status: 200, headers: { 'content-type': 'image/png', 'content-length': '3' }, body: Buffer.from('abc') }));
    const resource = await fetcher.fetch('https://images.example/cat.png', { maxBytes: 10 });
    expect(resource.contentType).toBe('image/png');
    expect(resource.contentLength).toBe(3);
    expect((await buffer(resource.body)).toString()).toBe('abc');
    expect(connector.calls).toHaveLength(1);
    expect(connector.calls[0]).toMatchObject({ address: PUBLIC, family: 4 });
    expect(connector.calls[0].url.hostname).toBe('images.example');
  });

  it('sends a User-Agent and no cookies or credentials', async () => {
    const { connector, fetcher } = setup({ userAgent: 'JanTest/1' });
    connector.routes.set('http://images.example/a', () => ({ status: 200, body: Buffer.from('x') }));
    await buffer((await fetcher.fetch('http://images.example/a', { maxBytes: 10 })).body);
    const headers = connector.calls[0].headers;
    expect(headers['user-agent']).toBe('JanTest/1');
    expect(Object.keys(headers).map((h) => h.toLowerCase())).not.toEqual(expect.arrayContaining(['cookie']));
    expect(Object.keys(headers).map((h) => h.toLowerCase())).not.toContain('authorization');
  });

  it.each([
    ['http://metadata.test/latest/meta-data/', 'linkLocal'],
    ['http://private.test/', 'private'],
    ['http://cgnat.test/', 'carrierGradeNat'],
    ['http://ula.test/', 'uniqueLocal'],
    ['http://mapped.test/', 'ipv4Mapped:linkLocal'],
    ['http://mixed.test/', 'loopback'],
  ])('blocks the name %s without connecting or naming its range (%s), as if it did not resolve', async (url, range) => {
    const connector: Connector = () => {
      throw new Error('connector must not be called for a blocked address');
    };
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const fetcher = new SafeRemoteFetcher({ timeoutMs: 2000, resolver, connector });
      const error = await failureOf(fetcher.fetch(url, { maxBytes: 10 }));
      const host = new URL(url).hostname;
      expect(error).toMatchObject({ code: 'remote_fetch_blocked', message: `${host} does not resolve to a public address` });
      expect(error.details).toEqual({ reason: 'no_public_address' });
      // The operator still learns which range it was.
      expect(warn).toHaveBeenCalledWith(expect.objectContaining({ host, reason: 'address', range }), expect.any(String));
    } finally {
      warn.mockRestore();
    }
  });

  it('answers a name that does not resolve, one with no answers and one in a blocked range alike', async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      const connector: Connector = () => Promise.reject(new Error('connector must not be called'));
      const answerWith = async (lookup: (host: string) => Promise<ResolvedAddress[]>) => {
        const error = await failureOf(new SafeRemoteFetcher({ timeoutMs: 2000, resolver: lookup, connector }).fetch('http://db.corp.test/x.png', { maxBytes: 10 }));
        return { code: error.code, message: error.message, details: error.details };
      };
      const internal = await answerWith(async () => [{ address: '10.1.2.3', family: 4 }]);
      const missing = await answerWith(async (host) => Promise.reject(Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' })));
      const empty = await answerWith(async () => []);
      expect(missing).toEqual(internal);
      expect(empty).toEqual(internal);
      expect(internal).toEqual({ code: 'remote_fetch_blocked', message: 'db.corp.test does not resolve to a public address', details: { reason: 'no_public_address' } });
      expect(warn.mock.calls.map(([fields]) => (fields as { reason: string }).reason)).toEqual(['address', 'dns', 'dns']);
    } finally {
      warn.mockRestore();
    }
  });

  it.each([
    ['http://169.254.169.254/latest/meta-data/', 'linkLocal'],
    ['http://0251.0376.0251.0376/', 'linkLocal'],
    ['http://2852039166/', 'linkLocal'],
    ['http://10.1/', 'private'],
    ['http://[fd00::1]/', 'uniqueLocal'],
    ['http://[fe80::1]/', 'linkLocal'],
    ['http://[::ffff:a9fe:a9fe]/', 'ipv4Mapped:linkLocal'],
    ['http://[64:ff9b::a9fe:a9fe]/', 'rfc6052:linkLocal'],
    ['http://[2002:a9fe:a9fe::]/', '6to4'],
    ['http://0.0.0.0/', 'unspecified'],
    ['http://localhost/', 'loopback'],
    ['http://LOCALHOST./', 'loopback'],
    ['http://app.localhost/', 'loopback'],
  ])('blocks %s without connecting (%s)', async (url, range) => {
    const connector: Connector = () => {
      throw new Error('connector must not be called for a blocked address');
    };
    const fetcher = new SafeRemoteFetcher({ timeoutMs: 2000, resolver, connector });
    const error = await failureOf(fetcher.fetch(url, { maxBytes: 10 }));
    expect(error.code).toBe('remote_fetch_blocked');
    expect(error.details).toEqual({ reason: 'address', range });
  });

  it.each([
    ['ftp://images.example/a.png', 'scheme'],
    ['file:///etc/passwd', 'scheme'],
    ['gopher://images.example/', 'scheme'],
    ['data:image/png;base64,AAAA', 'scheme'],
    ['http://user:pass@images.example/a.png', 'credentials'],
    ['http://user@images.example/a.png', 'credentials'],
  ])('blocks %s (%s)', async (url, reason) => {
    const { connector, fetcher } = setup();
    const error = await failureOf(fetcher.fetch(url, { maxBytes: 10 }));
    expect(error).toMatchObject({ code: 'remote_fetch_blocked', details: { reason } });
    expect(connector.calls).toHaveLength(0);
  });

  it('refuses a string that is not a URL as invalid_remote_url', async () => {
    const { fetcher } = setup();
    expect((await failureOf(fetcher.fetch('not a url', { maxBytes: 10 }))).code).toBe('invalid_remote_url');
  });

  it('re-checks every redirect hop and blocks one to the metadata service', async () => {
    const { connector, fetcher } = setup();
    connector.routes.set('http://images.example/a', () => ({ status: 302, headers: { location: 'http://metadata.test/latest/' } }));
    const error = await failureOf(fetcher.fetch('http://images.example/a', { maxBytes: 10 }));
    expect(error).toMatchObject({ code: 'remote_fetch_blocked', details: { reason: 'no_public_address' } });
    expect(connector.calls.map((c) => c.address)).toEqual([PUBLIC]);
  });

  it('blocks a redirect to another scheme or to credentials', async () => {
    const { connector, fetcher } = setup();
    connector.routes.set('http://images.example/file', () => ({ status: 301, headers: { location: 'file:///etc/passwd' } }));
    connector.routes.set('http://images.example/creds', () => ({ status: 307, headers: { location: 'http://a:b@images.example/x' } }));
    expect(await failureOf(fetcher.fetch('http://images.example/file', { maxBytes: 10 }))).toMatchObject({ code: 'remote_fetch_blocked', details: { reason: 'scheme' } });
    expect(await failureOf(fetcher.fetch('http://images.example/creds', { maxBytes: 10 }))).toMatchObject({ code: 'remote_fetch_blocked', details: { reason: 'credentials' } });
  });

  it('follows up to three relative and absolute redirects, and fails on the fourth', async () => {
    const { connector, fetcher } = setup();
    connector.routes.set('http://images.example/1', () => ({ status: 301, headers: { location: '/2' } }));
    connector.routes.set('http://images.example/2', () => ({ status: 302, headers: { location: 'https://v6.example/3' } }));
    connector.routes.set('https://v6.example/3', () => ({ status: 303, headers: { location: '4' } }));
    connector.routes.set('https://v6.example/4', () => ({ status: 200, body: Buffer.from('ok') }));
    connector.routes.set('http://images.example/0', () => ({ status: 308, headers: { location: '/1' } }));

    const resource = await fetcher.fetch('http://images.example/1', { maxBytes: 10 });
    expect((await buffer(resource.body)).toString()).toBe('ok');
    expect(connector.calls.map((c) => c.address)).toEqual([PUBLIC, PUBLIC, '2606:4700::1', '2606:4700::1']);

    const error = await failureOf(fetcher.fetch('http://images.example/0', { maxBytes: 10 }));
    expect(error).toMatchObject({ code: 'remote_fetch_failed', details: { reason: 'too_many_redirects' } });
  });

  it('honours a smaller maxRedirects', async () => {
    const { connector, fetcher } = setup({ maxRedirects: 0 });
    connector.routes.set('http://images.example/1', () => ({ status: 301, headers: { location: '/2' } }));
    expect((await failureOf(fetcher.fetch('http://images.example/1', { maxBytes: 10 }))).code).toBe('remote_fetch_failed');
  });

  it.each([404, 403, 500, 503, 304, 101])('maps upstream %s to remote_fetch_failed with the status', async (status) => {
    const { connector, fetcher } = setup();
    connector.routes.set('http://images.example/x', () => ({ status }));
    expect(await failureOf(fetcher.fetch('http://images.example/x', { maxBytes: 10 }))).toMatchObject({ code: 'remote_fetch_failed', details: { status } });
  });

  it('maps a redirect without Location to remote_fetch_failed', async () => {
    const { connector, fetcher } = setup();
    connector.routes.set('http://images.example/x', () => ({ status: 302 }));
    expect(await failureOf(fetcher.fetch('http://images.example/x', { maxBytes: 10 }))).toMatchObject({ code: 'remote_fetch_failed', details: { status: 302 } });
  });

  it('maps DNS failure to the blocked answer and refused connections to remote_fetch_failed', async () => {
    const { fetcher } = setup();
    expect(await failureOf(fetcher.fetch('http://nowhere.example/', { maxBytes: 10 }))).toMatchObject({ code: 'remote_fetch_blocked', details: { reason: 'no_public_address' } });
    expect(await failureOf(fetcher.fetch('http://images.example/unrouted', { maxBytes: 10 }))).toMatchObject({ code: 'remote_fetch_failed', details: { reason: 'connect' } });
  });

  it('treats an empty DNS answer as a resolution failure', async () => {
    const fetcher = new SafeRemoteFetcher({ timeoutMs: 1000, resolver: async () => [], connector: () => Promise.reject(new Error('unreachable')) });
    expect(await failureOf(fetcher.fetch('http://empty.example/', { maxBytes: 10 }))).toMatchObject({ code: 'remote_fetch_blocked', details: { reason: 'no_public_address' } });
  });

  it('tries the next approved address when one refuses', async () => {
    const { connector, fetcher } = setup();
    const seen: string[] = [];
    connector.routes.set('http://two.example/x', (request) => {
      seen.push(request.address);
      if (request.address !== PUBLIC) throw new Error('ECONNREFUSED');
      return { status: 200, body: Buffer.from('y') };
    });
    const resource = await fetcher.fetch('http://two.example/x', { maxBytes: 10 });
    expect((await buffer(resource.body)).toString()).toBe('y');
    expect(seen).toEqual(['93.184.216.35', PUBLIC]);
  });

  it('refuses a declared Content-Length over maxBytes before reading the body', async () => {
    const { connector, fetcher } = setup();
    const body = new Readable({ read() {} });
    connector.routes.set('http://images.example/big', () => ({ status: 200, headers: { 'content-length': '11' }, body }));
    expect(await failureOf(fetcher.fetch('http://images.example/big', { maxBytes: 10 }))).toMatchObject({ code: 'payload_too_large', details: { max_bytes: 10 } });
    expect(body.destroyed).toBe(true);
  });

  it('errors the body stream when more bytes arrive than Content-Length promised', async () => {
    const { connector, fetcher } = setup();
    connector.routes.set('http://images.example/liar', () => ({ status: 200, headers: { 'content-length': '4' }, body: Readable.from([Buffer.alloc(6), Buffer.alloc(6)]) }));
    const resource = await fetcher.fetch('http://images.example/liar', { maxBytes: 10 });
    await expect(buffer(resource.body)).rejects.toMatchObject({ code: 'payload_too_large' });
  });

  it('maps a body that dies midway to remote_fetch_failed', async () => {
    const { connector, fetcher } = setup();
    const body = new Readable({ read() {} });
    connector.routes.set('http://images.example/cut', () => ({ status: 200, body }));
    const resource = await fetcher.fetch('http://images.example/cut', { maxBytes: 100 });
    body.push(Buffer.from('ab'));
    setImmediate(() => body.destroy(new Error('socket hang up')));
    await expect(buffer(resource.body)).rejects.toMatchObject({ code: 'remote_fetch_failed', details: { reason: 'body' } });
  });

  it('times out a connect that never answers', async () => {
    const connector: Connector = ({ signal }) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    const fetcher = new SafeRemoteFetcher({ timeoutMs: 50, resolver, connector });
    expect((await failureOf(fetcher.fetch('http://images.example/slow', { maxBytes: 10 }))).code).toBe('remote_fetch_timeout');
  });

  it('times out a resolver that never answers', async () => {
    const fetcher = new SafeRemoteFetcher({ timeoutMs: 50, resolver: () => new Promise(() => undefined), connector: () => Promise.reject(new Error('unreachable')) });
    expect((await failureOf(fetcher.fetch('http://hang.example/', { maxBytes: 10 }))).code).toBe('remote_fetch_timeout');
  });

  it('times out a body that stalls, because the deadline covers the whole fetch', async () => {
    const { connector, fetcher } = setup({ timeoutMs: 80 });
    const body = new Readable({ read() {} });
    connector.routes.set('http://images.example/trickle', () => ({ status: 200, body }));
    const resource = await fetcher.fetch('http://images.example/trickle', { maxBytes: 100 });
    body.push(Buffer.from('a'));
    await expect(buffer(resource.body)).rejects.toMatchObject({ code: 'remote_fetch_timeout' });
    expect(body.destroyed).toBe(true);
  });

  it('lets an unread body time out quietly instead of raising an unhandled error', async () => {
    const { connector, fetcher } = setup({ timeoutMs: 30 });
    const upstream = new Readable({ read() {} });
    connector.routes.set('http://images.example/unread', () => ({ status: 200, body: upstream }));
    const resource = await fetcher.fetch('http://images.example/unread', { maxBytes: 100 });
    await new Promise((resolve) => resource.body.once('close', resolve));
    expect(resource.body.destroyed).toBe(true);
    expect(upstream.destroyed).toBe(true);
  });

  it("passes the caller's abort reason through", async () => {
    const connector: Connector = ({ signal }) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    const fetcher = new SafeRemoteFetcher({ timeoutMs: 5000, resolver, connector });
    const controller = new AbortController();
    const pending = fetcher.fetch('http://images.example/slow', { maxBytes: 10, signal: controller.signal });
    const reason = new Error('client disconnected');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
  });
});
