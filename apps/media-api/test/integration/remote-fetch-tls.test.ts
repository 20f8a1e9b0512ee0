import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { generate } from 'selfsigned';
import { SafeRemoteFetcher } from '../../src/infrastructure/remote-fetch/safe-remote-fetcher';

/**
 * https on loopback only: a server on 127.0.0.2 with a certificate for `images.test`, reached
 * through an injected resolver. Certificates are verified against the name asked for (SNI), never
 * skipped; a private CA can be added but does not replace the root store.
 */
describe('SafeRemoteFetcher over TLS', () => {
  let server: Server;
  let port: number;
  let caPem: string;
  const body = Buffer.from('\x89PNG tls bytes');

  beforeAll(async () => {
    const pems = await generate([{ name: 'commonName', value: 'images.test' }], {
      keySize: 2048,
      notAfterDate: new Date(Date.now() + 2 * 86_400_000),
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'images.test' }] }],
    });
    caPem = pems.cert;
    server = createServer({ key: pems.private, cert: pems.cert }, (req, res) => {
      res.writeHead(200, { 'content-type': 'image/png', 'x-saw-host': String(req.headers.host) }).end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
  });

  const fetcher = (extraCaCertificates?: string[]) =>
    new SafeRemoteFetcher({
      timeoutMs: 5_000,
      allowCidrs: ['127.0.0.2/32'],
      resolver: async (host) => {
        if (host === 'images.test' || host === 'other.test') return [{ address: '127.0.0.2', family: 4 }];
        throw Object.assign(new Error(`unknown host ${host}`), { code: 'ENOTFOUND' });
      },
      extraCaCertificates,
    });

  async function read(resource: { body: NodeJS.ReadableStream }): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of resource.body) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  it('refuses a certificate it cannot verify (no silent insecure fallback)', async () => {
    await expect(fetcher().fetch(`https://images.test:${port}/x.png`, { maxBytes: 1024 })).rejects.toMatchObject({ code: 'remote_fetch_failed' });
  });

  it('fetches over https when the certificate chains to a configured CA, speaking to the asked-for name', async () => {
    const resource = await fetcher([caPem]).fetch(`https://images.test:${port}/x.png`, { maxBytes: 1024 });
    expect(await read(resource)).toEqual(body);
  });

  it('refuses a certificate issued for another name, even from a trusted CA', async () => {
    await expect(fetcher([caPem]).fetch(`https://other.test:${port}/x.png`, { maxBytes: 1024 })).rejects.toMatchObject({ code: 'remote_fetch_failed' });
  });
});
