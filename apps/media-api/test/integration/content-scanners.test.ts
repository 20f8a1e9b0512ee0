import http, { type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { createHash } from 'node:crypto';
import type { ScanSubject } from '@jan/domain';
import { ClamdContentScanner } from '../../src/infrastructure/scanning/clamd-content-scanner';
import { WebhookContentScanner } from '../../src/infrastructure/scanning/webhook-content-scanner';
import { EICAR, pngImage, withTextChunk } from '../support/images';

/** Real clamd (started by scripts/test.mjs with one local test signature) and real HTTP, loopback only. */

function subject(bytes: Buffer, chunkSize = bytes.length): ScanSubject {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += chunkSize) chunks.push(bytes.subarray(i, i + chunkSize));
  return { bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), mimeType: 'image/png', open: () => Readable.from(chunks) };
}

function clamdAddress(): string {
  const address = process.env.TEST_CLAMD_ADDRESS;
  if (!address) throw new Error('TEST_CLAMD_ADDRESS is not set: run the suite with `pnpm test` (scripts/test.mjs starts clamd)');
  return address;
}

async function listenTcp(onConnection: (socket: Socket) => void): Promise<{ server: TcpServer; address: string }> {
  const server = createTcpServer(onConnection);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, address: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('ClamdContentScanner against clamd', () => {
  const scanner = () => new ClamdContentScanner({ address: clamdAddress(), maxBytes: 32 * 1024 * 1024, timeoutMs: 10_000 });

  it('passes a clean image and answers its ping', async () => {
    expect(await scanner().scan(subject(await pngImage(1)))).toEqual({ verdict: 'clean' });
    expect(await scanner().ping()).toBe(true);
  });

  it('rejects an image carrying the EICAR test string, sent in many small chunks, with the signature as reason', async () => {
    const infected = withTextChunk(await pngImage(2), EICAR);
    expect(await scanner().scan(subject(infected, 7))).toEqual({ verdict: 'rejected', reason: 'Jan-Test-Eicar.UNOFFICIAL' });
  });

  it('refuses, without connecting, an image larger than clamd accepts', async () => {
    const small = new ClamdContentScanner({ address: clamdAddress(), maxBytes: 10, timeoutMs: 10_000 });
    await expect(small.scan(subject(await pngImage(3)))).rejects.toMatchObject({ code: 'scanner_unavailable' });
  });

  it('fails closed when nothing listens, when the peer is not clamd, and when it never answers', async () => {
    const closed = await listenTcp(() => undefined);
    const port = closed.address;
    await new Promise((resolve) => closed.server.close(resolve));
    const image = subject(await pngImage(4));
    await expect(new ClamdContentScanner({ address: port, maxBytes: 1e6, timeoutMs: 2_000 }).scan(image)).rejects.toMatchObject({ code: 'scanner_unavailable' });

    const liar = await listenTcp((socket) => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n\0'));
    const silent = await listenTcp(() => undefined);
    try {
      await expect(new ClamdContentScanner({ address: liar.address, maxBytes: 1e6, timeoutMs: 2_000 }).scan(image)).rejects.toMatchObject({ code: 'scanner_unavailable' });
      await expect(new ClamdContentScanner({ address: silent.address, maxBytes: 1e6, timeoutMs: 300 }).scan(image)).rejects.toMatchObject({ code: 'scanner_unavailable' });
    } finally {
      liar.server.close();
      silent.server.close();
    }
  });
});

describe('WebhookContentScanner against an HTTP service', () => {
  let server: Server;
  let url: string;
  let answer: { status: number; body: string; delayMs?: number };
  let received: { headers: http.IncomingHttpHeaders; body: Buffer } | undefined;

  beforeAll(async () => {
    server = http.createServer(async (req, res) => {
      if (req.method === 'GET') return res.end('ok');
      received = { headers: req.headers, body: await buffer(req) };
      setTimeout(() => res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body), answer.delayMs ?? 0);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/scan`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('sends the bytes with their type and hash, and maps clean and rejected answers', async () => {
    const image = await pngImage(5);
    const scanner = new WebhookContentScanner({ url, timeoutMs: 5_000 });
    answer = { status: 200, body: '{"verdict":"clean"}' };
    expect(await scanner.scan(subject(image, 100))).toEqual({ verdict: 'clean' });
    expect(received!.body.equals(image)).toBe(true);
    expect(received!.headers['content-type']).toBe('image/png');
    expect(received!.headers['x-jan-media-sha256']).toBe(subject(image).sha256);

    answer = { status: 200, body: '{"verdict":"rejected","reason":"dlp.card-number"}' };
    expect(await scanner.scan(subject(image))).toEqual({ verdict: 'rejected', reason: 'dlp.card-number' });
    expect(await scanner.ping()).toBe(true);
  });

  it.each([
    ['a 500', { status: 500, body: '{"verdict":"clean"}' }],
    ['a body that is not JSON', { status: 200, body: 'clean' }],
    ['an unknown verdict', { status: 200, body: '{"verdict":"maybe"}' }],
    ['no answer in time', { status: 200, body: '{"verdict":"clean"}', delayMs: 1_000 }],
  ])('fails closed on %s', async (_what, given) => {
    answer = given;
    const scanner = new WebhookContentScanner({ url, timeoutMs: 300 });
    await expect(scanner.scan(subject(await pngImage(6)))).rejects.toMatchObject({ code: 'scanner_unavailable' });
  });
});
