import { readdir } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { uniqueUser } from '../support/images';
import { uniquePng } from '../support/unique-image';
import { SERVICE_KEY, startTestApp, type TestApp } from '../support/test-app';

/**
 * Sends `head` and the first part of a body, then nothing more, and reads what the server answers
 * before it closes the connection.
 */
function stall(app: TestApp, head: string, partialBody: Buffer): Promise<{ status: number; body: string; ms: number }> {
  const url = new URL(app.baseUrl);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const [headText, body = ''] = Buffer.concat(chunks).toString('utf8').split('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(headText ?? '')?.[1]), body, ms: Date.now() - started });
    });
    socket.write(head);
    socket.write(partialBody);
  });
}

describe('MEDIA_REQUEST_TIMEOUT', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ env: { MEDIA_REQUEST_TIMEOUT: '1s' } });
  });
  afterAll(async () => {
    await app?.close();
  });

  it('answers 408 request_timeout to a body that stops arriving, and keeps nothing of it', async () => {
    const user = uniqueUser();
    const png = await uniquePng(700); // ~1.5 MB: a multipart file over 1 MiB goes to a spool file
    const boundary = 'stall-boundary';
    const partHead = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n`;
    const total = Buffer.byteLength(partHead) + png.length + Buffer.byteLength(`\r\n--${boundary}--\r\n`);
    const sent = Buffer.concat([Buffer.from(partHead), png.subarray(0, Math.min(png.length - 1, 1_200_000))]);
    const head =
      `POST /v1/media/upload HTTP/1.1\r\nHost: x\r\nX-Media-Service-Key: ${SERVICE_KEY}\r\nX-Jan-User-Id: ${user}\r\n` +
      `Content-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${total}\r\n\r\n`;

    const answer = await stall(app, head, sent);
    expect(answer.status).toBe(408);
    expect(JSON.parse(answer.body)).toMatchObject({ code: 'request_timeout', request_id: expect.any(String) });
    // Checked every quarter of the timeout: answered well before a client's own timeouts would be.
    expect(answer.ms).toBeLessThan(5_000);

    // Nothing stored for the user, and the upload's spool file is gone.
    const usage = await app.call('/v1/usage', { user });
    expect(await usage.json()).toMatchObject({ objects: 0, bytes: 0 });
    let spooled: string[] = [];
    for (let i = 0; i < 50; i++) {
      spooled = (await readdir(join(app.dataDir, 'tmp')).catch(() => [] as string[])).filter((name) => name.startsWith('upload-'));
      if (spooled.length === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(spooled).toEqual([]);
  });

  it('lets a request that arrives in time through', async () => {
    const res = await app.call('/v1/usage', { user: uniqueUser() });
    expect(res.status).toBe(200);
  });
});
