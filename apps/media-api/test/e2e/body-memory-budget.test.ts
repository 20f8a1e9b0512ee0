import { connect, type Socket } from 'node:net';
import { startTestApp, type TestApp } from '../support/test-app';
import { dataUrl, noisyPng, uniqueUser } from '../support/images';

/** MEDIA_BODY_MEMORY_BUDGET over real sockets: large JSON bodies wait for budget, and always give it back. */
describe('the memory budget of large JSON bodies', () => {
  let app: TestApp;
  let image: Buffer;

  beforeAll(async () => {
    // ~1.2 MB of noise: a ~1.6 MB data URL, over the 1 MiB under which bodies skip the budget.
    image = await noisyPng(640);
    // Room for one such body at a time: a second one waits until the first is answered.
    app = await startTestApp({ env: { MEDIA_MAX_BYTES: '2MiB', MEDIA_BODY_MEMORY_BUDGET: '3MiB' } });
  });
  afterAll(async () => {
    await app?.close();
  });

  const body = (bytes: Buffer) => Buffer.from(JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(bytes) } }));

  /**
   * A JSON POST over a raw socket: request line, the credentials, `framing` (Content-Length or
   * Transfer-Encoding), then nothing more until the test writes it. `answer` is everything the
   * server sent back by the time it closed the connection.
   */
  const openPost = (path: string, user: string, framing: string): { socket: Socket; answer: Promise<string> } => {
    const url = new URL(app.baseUrl);
    const socket = connect(Number(url.port), url.hostname);
    let received = '';
    const answer = new Promise<string>((resolve) => {
      socket.on('data', (chunk) => (received += chunk.toString('latin1')));
      socket.on('close', () => resolve(received));
      socket.on('error', () => undefined);
    });
    socket.write(
      `POST ${path} HTTP/1.1\r\nHost: ${url.host}\r\nX-Media-Service-Key: ${app.running.config.serviceKeys[0]}\r\n` +
        `X-Jan-User-Id: ${user}\r\nContent-Type: application/json\r\n${framing}\r\nConnection: close\r\n\r\n`,
    );
    return { socket, answer };
  };

  /** Sends the request line, headers and the first `sent` bytes of the body, then waits. */
  const openUpload = (user: string, json: Buffer, sent: number) => {
    const upload = openPost('/v1/media', user, `Content-Length: ${json.length}`);
    upload.socket.write(json.subarray(0, sent));
    return upload;
  };

  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('gives back the share of a client that went away while its body waited, so later uploads are not stuck', async () => {
    const json = body(image);
    const user = uniqueUser('budget');
    // The first upload takes the budget and holds it while its body trickles in.
    const first = openUpload(user, json, 1000);
    await sleep(200);
    // The second waits for budget; its client gives up before it is let in.
    const second = openUpload(user, json, 1000);
    await sleep(200);
    second.socket.destroy();
    await sleep(200);
    first.socket.write(json.subarray(1000));
    expect((await first.answer).split('\r\n')[0]).toBe('HTTP/1.1 200 OK');

    // Budget for one large body must be free again: the next uploads are answered, one after the other.
    for (let i = 0; i < 2; i++) {
      const other = await noisyPng(640);
      const res = await app.call('/v1/media', { method: 'POST', user, body: body(other).toString(), signal: AbortSignal.timeout(10_000) });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { bytes: number }).bytes).toBe(other.length);
    }
  });

  /** A chunked request (no Content-Length): request line, headers and `firstChunk`, then it waits. */
  const openChunked = (path: string, user: string, firstChunk: Buffer) => {
    const { socket, answer } = openPost(path, user, 'Transfer-Encoding: chunked');
    const send = (bytes: Buffer) => socket.write(`${bytes.length.toString(16)}\r\n${bytes.toString('latin1')}\r\n`, 'latin1');
    send(firstChunk);
    return { socket, answer, send, end: () => socket.write('0\r\n\r\n') };
  };

  it('lets small chunked bodies through while a stalled chunked body has sent little, and meters large ones', async () => {
    const user = uniqueUser('budget');
    const json = body(image);
    // A stalled chunked upload: it has sent 100 bytes and holds no budget for them.
    const stalled = openChunked('/v1/media', user, json.subarray(0, 100));
    await sleep(200);
    // A small chunked resolve and a large chunked upload are both answered meanwhile.
    const resolve = openChunked('/v1/media/resolve', user, Buffer.from('{"payload":{"text":"hi"}}'));
    resolve.end();
    expect((await resolve.answer).split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
    const large = openChunked('/v1/media', user, json.subarray(0, 64 * 1024));
    for (let at = 64 * 1024; at < json.length; at += 64 * 1024) large.send(json.subarray(at, at + 64 * 1024));
    large.end();
    expect((await large.answer).split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
    // Once past 1 MiB, the stalled one waits its turn for budget and is answered when it finishes.
    for (let at = 100; at < json.length; at += 64 * 1024) stalled.send(json.subarray(at, Math.min(at + 64 * 1024, json.length)));
    stalled.end();
    expect((await stalled.answer).split('\r\n')[0]).toBe('HTTP/1.1 200 OK');
  });
});
