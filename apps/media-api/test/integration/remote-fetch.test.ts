import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buffer } from 'node:stream/consumers';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { DomainError } from '@jan/domain';
import { nodeHttpConnector, SafeRemoteFetcher, type Connector, type Resolver } from '../../src/infrastructure/remote-fetch/safe-remote-fetcher';

/**
 * Real sockets, loopback only: a victim on 127.0.0.1 and ::1 (same port) that must never be reached,
 * and an allow-listed origin on 127.0.0.2. Anything outside loopback is tested with an injected
 * resolver and a connector that throws, so no packet leaves the machine even if the code is wrong.
 */

interface Recorded {
  method?: string;
  url?: string;
  headers: IncomingMessage['headers'];
}

function listen(host: string, port: number, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = http.createServer(handler);
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

const close = (server: Server) =>
  new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });

const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');

let victimHits: Recorded[] = [];
let originHits: Recorded[] = [];
let victims: Server[] = [];
let origin: Server;
let victimPort: number;
let originPort: number;
const openSockets = new Set<ServerResponse>();

beforeAll(async () => {
  const recordVictim = (req: IncomingMessage, res: ServerResponse) => {
    victimHits.push({ method: req.method, url: req.url, headers: req.headers });
    res.end('secret');
  };
  // The IPv6 victim shares the IPv4 victim's port, so `[::1]:port` would land on it.
  for (let attempt = 0; attempt < 10 && victims.length === 0; attempt++) {
    const v4 = await listen('127.0.0.1', 0, recordVictim);
    const port = (v4.address() as AddressInfo).port;
    try {
      const v6 = await listen('::1', port, recordVictim);
      victims = [v4, v6];
      victimPort = port;
    } catch {
      await close(v4);
    }
  }
  if (victims.length === 0) throw new Error('could not bind the victim on 127.0.0.1 and ::1');

  origin = await listen('127.0.0.2', 0, (req, res) => {
    originHits.push({ method: req.method, url: req.url, headers: req.headers });
    const url = new URL(req.url ?? '/', 'http://origin');
    const path = url.pathname;
    if (path.startsWith('/encoded/')) {
      // /encoded/<content-encoding>/<what>: the PNG, ten megabytes of zeros, or bytes that do not decode.
      const [, , encoding, what] = path.split('/');
      const raw = what === 'bomb' ? Buffer.alloc(10 * 1024 * 1024) : PNG;
      const encoded =
        what === 'garbage'
          ? Buffer.from('not compressed at all')
          : what === 'empties' // 100 KB of empty gzip members: decodes to nothing at all
            ? Buffer.concat(Array.from({ length: 5000 }, () => gzipSync(Buffer.alloc(0))))
            : encoding === 'br'
              ? brotliCompressSync(raw)
              : encoding === 'deflate'
                ? deflateSync(raw)
                : gzipSync(raw);
      res.writeHead(200, { 'content-type': 'image/png', 'content-encoding': encoding!, 'content-length': encoded.length });
      res.end(encoded);
      return;
    }
    if (path === '/image.png') {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': PNG.length, 'set-cookie': 'session=abc' });
      res.end(PNG);
    } else if (path === '/to') {
      res.writeHead(302, { location: url.searchParams.get('u') ?? '/' });
      res.end();
    } else if (path.startsWith('/chain/')) {
      const left = Number(path.split('/')[2]);
      if (left === 0) {
        res.writeHead(200, { 'content-type': 'image/png' });
        res.end(PNG);
      } else {
        res.writeHead(301, { location: `/chain/${left - 1}` });
        res.end();
      }
    } else if (path === '/declared-big') {
      res.writeHead(200, { 'content-length': '1000000' });
      res.write(Buffer.alloc(100));
      openSockets.add(res);
    } else if (path === '/chunked-big') {
      res.writeHead(200, { 'content-type': 'image/png' });
      let sent = 0;
      const push = () => {
        while (sent < 200_000) {
          sent += 10_000;
          if (!res.write(Buffer.alloc(10_000))) return res.once('drain', push);
        }
        res.end();
      };
      push();
    } else if (path === '/short-body') {
      res.writeHead(200, { 'content-length': '1000' });
      res.write(Buffer.alloc(10));
      setTimeout(() => res.destroy(), 20);
    } else if (path === '/slow-headers') {
      openSockets.add(res);
    } else if (path === '/slow-body') {
      res.writeHead(200, { 'content-type': 'image/png' });
      res.write(PNG.subarray(0, 8));
      openSockets.add(res);
    } else {
      res.writeHead(404);
      res.end('nope');
    }
  });
  originPort = (origin.address() as AddressInfo).port;
});

afterAll(async () => {
  for (const res of openSockets) res.destroy();
  await Promise.all([...victims, origin].map(close));
});

beforeEach(() => {
  victimHits = [];
  originHits = [];
});

const neverConnect: Connector = () => {
  throw new Error('the connector must not be reached for a blocked address');
};

function fetcher(options: { allowCidrs?: string[]; resolver?: Resolver; connector?: Connector; timeoutMs?: number } = {}) {
  return new SafeRemoteFetcher({ timeoutMs: options.timeoutMs ?? 3000, allowCidrs: options.allowCidrs ?? [], userAgent: 'JanMediaAPI-test', resolver: options.resolver, connector: options.connector });
}

async function failureOf(promise: Promise<unknown>): Promise<DomainError> {
  const error = await promise.then(
    () => {
      throw new Error('expected the fetch to fail');
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DomainError);
  return error as DomainError;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  return (await failureOf(promise)).code;
}

describe('SafeRemoteFetcher against real loopback servers', () => {
  const spellings = () => [
    `http://127.0.0.1:${victimPort}/`,
    `http://2130706433:${victimPort}/`,
    `http://0177.0.0.1:${victimPort}/`,
    `http://0177.0000.0000.0001:${victimPort}/`,
    `http://0x7f.1:${victimPort}/`,
    `http://0x7f000001:${victimPort}/`,
    `http://127.1:${victimPort}/`,
    `http://127.0.1:${victimPort}/`,
    `http://127.0.0.1.:${victimPort}/`,
    `http://%31%32%37.0.0.1:${victimPort}/`,
    `http://localhost:${victimPort}/`,
    `http://LOCALHOST.:${victimPort}/`,
    `http://victim.localhost:${victimPort}/`,
    `http://[::1]:${victimPort}/`,
    `http://[0:0:0:0:0:0:0:1]:${victimPort}/`,
    `http://[::ffff:127.0.0.1]:${victimPort}/`,
    `http://[::ffff:7f00:1]:${victimPort}/`,
    `http://[::127.0.0.1]:${victimPort}/`,
    `https://127.0.0.1:${victimPort}/`,
  ];

  it('blocks 127.0.0.1 in every spelling, and the victim sees nothing (default resolver and connector)', async () => {
    const attempts = spellings();
    expect(attempts.length).toBeGreaterThan(15);
    for (const url of attempts) {
      await expect(codeOf(fetcher().fetch(url, { maxBytes: 1000 }))).resolves.toBe('remote_fetch_blocked');
    }
    expect(victimHits).toEqual([]);
  });

  it('the victim is reachable at all (so "saw nothing" means something)', async () => {
    const resource = await fetcher({ allowCidrs: ['127.0.0.1/32'] }).fetch(`http://127.0.0.1:${victimPort}/probe`, { maxBytes: 1000 });
    expect((await buffer(resource.body)).toString()).toBe('secret');
    expect(victimHits.map((h) => h.url)).toEqual(['/probe']);
  });

  it('fetches from the allow-listed origin end to end, sending no cookies or auth', async () => {
    const resource = await fetcher({ allowCidrs: ['127.0.0.2/32'] }).fetch(`http://127.0.0.2:${originPort}/image.png`, { maxBytes: 1000 });
    expect(resource.contentType).toBe('image/png');
    expect(resource.contentLength).toBe(PNG.length);
    expect(await buffer(resource.body)).toEqual(PNG);
    expect(originHits).toHaveLength(1);
    expect(originHits[0].headers['user-agent']).toBe('JanMediaAPI-test');
    expect(originHits[0].headers.cookie).toBeUndefined();
    expect(originHits[0].headers.authorization).toBeUndefined();
  });

  it('decodes a gzip, deflate or br Content-Encoding the server sent anyway, counting the decoded bytes against the limit', async () => {
    const origin = fetcher({ allowCidrs: ['127.0.0.2/32'] });
    for (const encoding of ['gzip', 'x-gzip', 'deflate', 'br']) {
      const resource = await origin.fetch(`http://127.0.0.2:${originPort}/encoded/${encoding}/png`, { maxBytes: 1000 });
      expect(resource.contentLength).toBeNull();
      expect(await buffer(resource.body)).toEqual(PNG);
    }
    // Ten megabytes of zeros gzip to ~10 KB: the limit stops the decoded stream, not the wire.
    const bomb = await origin.fetch(`http://127.0.0.2:${originPort}/encoded/gzip/bomb`, { maxBytes: 64 * 1024 });
    await expect(codeOf(buffer(bomb.body))).resolves.toBe('payload_too_large');
    // A body that decodes to nothing is still limited on the wire.
    const empties = await origin.fetch(`http://127.0.0.2:${originPort}/encoded/gzip/empties`, { maxBytes: 10_000 });
    await expect(codeOf(buffer(empties.body))).resolves.toBe('payload_too_large');
    const garbage = await origin.fetch(`http://127.0.0.2:${originPort}/encoded/gzip/garbage`, { maxBytes: 1000 });
    await expect(codeOf(buffer(garbage.body))).resolves.toBe('remote_fetch_failed');
    const unknown = await failureOf(origin.fetch(`http://127.0.0.2:${originPort}/encoded/compress/png`, { maxBytes: 1000 }));
    expect(unknown).toMatchObject({ code: 'remote_fetch_failed', details: { reason: 'content_encoding' } });
  });

  it('connects to the checked address while sending the name as Host', async () => {
    const resolver: Resolver = async (host) => (host === 'origin.test' ? [{ address: '127.0.0.2', family: 4 }] : []);
    const resource = await fetcher({ allowCidrs: ['127.0.0.2/32'], resolver }).fetch(`http://origin.test:${originPort}/image.png`, { maxBytes: 1000 });
    expect(await buffer(resource.body)).toEqual(PNG);
    expect(originHits[0].headers.host).toBe(`origin.test:${originPort}`);
  });

  it('resolves once per hop, so a rebinding answer cannot move the connection', async () => {
    let calls = 0;
    const rebinding: Resolver = async () => (calls++ === 0 ? [{ address: '127.0.0.2', family: 4 }] : [{ address: '127.0.0.1', family: 4 }]);
    const resource = await fetcher({ allowCidrs: ['127.0.0.2/32'], resolver: rebinding }).fetch(`http://rebind.test:${originPort}/image.png`, { maxBytes: 1000 });
    expect(await buffer(resource.body)).toEqual(PNG);
    expect(calls).toBe(1);
    expect(victimHits).toEqual([]);
  });

  it('blocks a name whose answers include a loopback address the allow list does not cover', async () => {
    const resolver: Resolver = async () => [
      { address: '127.0.0.2', family: 4 },
      { address: '127.0.0.1', family: 4 },
    ];
    await expect(codeOf(fetcher({ allowCidrs: ['127.0.0.2/32'], resolver }).fetch(`http://mixed.test:${victimPort}/`, { maxBytes: 1000 }))).resolves.toBe(
      'remote_fetch_blocked',
    );
    expect(victimHits).toEqual([]);
  });

  it('blocks redirects from the allow-listed origin to the victim in every spelling', async () => {
    const targets = spellings().filter((u) => u.startsWith('http:'));
    for (const target of targets) {
      const url = `http://127.0.0.2:${originPort}/to?u=${encodeURIComponent(target)}`;
      await expect(codeOf(fetcher({ allowCidrs: ['127.0.0.2/32'] }).fetch(url, { maxBytes: 1000 }))).resolves.toBe('remote_fetch_blocked');
    }
    expect(originHits).toHaveLength(targets.length);
    expect(victimHits).toEqual([]);
  });

  it('blocks a redirect to a scheme other than http(s)', async () => {
    const url = `http://127.0.0.2:${originPort}/to?u=${encodeURIComponent('file:///etc/passwd')}`;
    await expect(codeOf(fetcher({ allowCidrs: ['127.0.0.2/32'] }).fetch(url, { maxBytes: 1000 }))).resolves.toBe('remote_fetch_blocked');
  });

  it('follows three redirects and fails on a fourth', async () => {
    const ok = await fetcher({ allowCidrs: ['127.0.0.2/32'] }).fetch(`http://127.0.0.2:${originPort}/chain/3`, { maxBytes: 1000 });
    expect(await buffer(ok.body)).toEqual(PNG);
    await expect(codeOf(fetcher({ allowCidrs: ['127.0.0.2/32'] }).fetch(`http://127.0.0.2:${originPort}/chain/4`, { maxBytes: 1000 }))).resolves.toBe(
      'remote_fetch_failed',
    );
  });

  it('maps 404 to remote_fetch_failed with the status', async () => {
    const error = await fetcher({ allowCidrs: ['127.0.0.2/32'] })
      .fetch(`http://127.0.0.2:${originPort}/missing`, { maxBytes: 1000 })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'remote_fetch_failed', details: { status: 404 } });
  });

  it('refuses a declared Content-Length over the limit before reading the body', async () => {
    await expect(codeOf(fetcher({ allowCidrs: ['127.0.0.2/32'] }).fetch(`http://127.0.0.2:${originPort}/declared-big`, { maxBytes: 1000 }))).resolves.toBe(
      'payload_too_large',
    );
  });

  it('errors the body with payload_too_large when an undeclared body runs past the limit', async () => {
    const resource = await fetcher({ allowCidrs: ['127.0.0.2/32'] }).fetch(`http://127.0.0.2:${originPort}/chunked-big`, { maxBytes: 50_000 });
    expect(resource.contentLength).toBeNull();
    await expect(buffer(resource.body)).rejects.toMatchObject({ code: 'payload_too_large' });
  });

  it('maps a body cut short to remote_fetch_failed', async () => {
    const resource = await fetcher({ allowCidrs: ['127.0.0.2/32'] }).fetch(`http://127.0.0.2:${originPort}/short-body`, { maxBytes: 5000 });
    await expect(buffer(resource.body)).rejects.toMatchObject({ code: 'remote_fetch_failed' });
  });

  it('times out a server that never answers, and one that stalls mid-body', async () => {
    const quick = fetcher({ allowCidrs: ['127.0.0.2/32'], timeoutMs: 200 });
    await expect(codeOf(quick.fetch(`http://127.0.0.2:${originPort}/slow-headers`, { maxBytes: 1000 }))).resolves.toBe('remote_fetch_timeout');
    const resource = await quick.fetch(`http://127.0.0.2:${originPort}/slow-body`, { maxBytes: 1000 });
    await expect(buffer(resource.body)).rejects.toMatchObject({ code: 'remote_fetch_timeout' });
  });

  it('maps a refused connection to remote_fetch_failed', async () => {
    const spare = await listen('127.0.0.2', 0, () => undefined);
    const port = (spare.address() as AddressInfo).port;
    await close(spare);
    await expect(codeOf(fetcher({ allowCidrs: ['127.0.0.2/32'] }).fetch(`http://127.0.0.2:${port}/`, { maxBytes: 1000 }))).resolves.toBe('remote_fetch_failed');
  });

  it('refuses a name that does not resolve as remote_fetch_blocked, as it refuses one resolving to an internal range', async () => {
    const resolver: Resolver = async (host) => {
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    };
    await expect(codeOf(fetcher({ resolver, connector: neverConnect }).fetch('http://nxdomain.test/', { maxBytes: 1000 }))).resolves.toBe('remote_fetch_blocked');
  });
});

describe('SafeRemoteFetcher for non-loopback ranges (injected resolver, connector that never connects)', () => {
  const answers: Record<string, string> = {
    'metadata.test': '169.254.169.254',
    'gcp-metadata.test': '169.254.169.254',
    'aws-v6-metadata.test': 'fd00:ec2::254',
    'rfc1918-a.test': '10.0.0.1',
    'rfc1918-b.test': '172.16.5.4',
    'rfc1918-c.test': '192.168.1.1',
    'cgnat.test': '100.64.0.1',
    'multicast.test': '224.0.0.251',
    'broadcast.test': '255.255.255.255',
    'reserved.test': '240.0.0.1',
    'benchmark.test': '198.18.0.1',
    'unspecified.test': '0.0.0.0',
    'ula.test': 'fd12:3456::1',
    'linklocal6.test': 'fe80::1',
    'mapped.test': '::ffff:10.0.0.1',
    'nat64.test': '64:ff9b::a9fe:a9fe',
    'sixtofour.test': '2002:a9fe:a9fe::1',
    'teredo.test': '2001:0:4136:e378:8000:63bf:80ff:fffe',
  };
  const resolver: Resolver = async (host) => {
    const address = answers[host];
    if (!address) throw new Error(`unexpected lookup of ${host}`);
    return [{ address, family: address.includes(':') ? 6 : 4 }];
  };

  it.each(Object.keys(answers))('%s is blocked before any connection', async (host) => {
    await expect(codeOf(fetcher({ resolver, connector: neverConnect }).fetch(`http://${host}/latest/meta-data/`, { maxBytes: 1000 }))).resolves.toBe(
      'remote_fetch_blocked',
    );
  });

  it.each(['http://169.254.169.254/latest/meta-data/', 'http://[fd00:ec2::254]/', 'http://0xa9fea9fe/', 'http://10.1/', 'http://[::ffff:192.168.0.1]/'])(
    'literal %s is blocked before any connection',
    async (url) => {
      await expect(codeOf(fetcher({ resolver, connector: neverConnect }).fetch(url, { maxBytes: 1000 }))).resolves.toBe('remote_fetch_blocked');
    },
  );

  it('blocks a redirect from the allow-listed origin to the metadata service, without connecting to it', async () => {
    let connects = 0;
    const guarded: Connector = async (request) => {
      connects++;
      if (request.address !== '127.0.0.2') throw new Error(`refusing to connect to ${request.address}`);
      return nodeHttpConnector(request);
    };
    const url = `http://127.0.0.2:${originPort}/to?u=${encodeURIComponent('http://metadata.test/latest/meta-data/')}`;
    await expect(codeOf(fetcher({ allowCidrs: ['127.0.0.2/32'], resolver, connector: guarded }).fetch(url, { maxBytes: 1000 }))).resolves.toBe('remote_fetch_blocked');
    expect(connects).toBe(1);
  });
});
