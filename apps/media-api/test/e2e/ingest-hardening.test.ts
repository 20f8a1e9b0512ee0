import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import zlib from 'node:zlib';
import fc from 'fast-check';
import { Client } from 'pg';
import sharp from 'sharp';
import { postgresDsn, SERVICE_KEY_ID, startTestApp, type TestApp } from '../support/test-app';
import { auditRows } from '../support/audit-rows';
import { dataUrl, pngImage, uniqueUser, withTextChunk } from '../support/images';
import { parseIngestJson, takeDecodedDataUrl } from '../../src/modules/media/data-url-body';

/** Hostile input over real HTTP: limits, types, multipart, remote fetch, races — nothing half-done. */
describe('ingest against hostile input', () => {
  let app: TestApp;
  let db: Client;
  let origin: Server;
  let originHits = 0;
  let originPort = 0;
  let png: Buffer;

  beforeAll(async () => {
    png = await pngImage(77, 24);
    origin = createServer((req, res) => {
      originHits++;
      if (req.url === '/cat.png') {
        res.writeHead(200, { 'content-type': 'image/png' }).end(png);
      } else if (req.url === '/missing.png') {
        res.writeHead(404).end();
      } else {
        res.writeHead(200, { 'content-type': 'text/html' }).end('<html><script>alert(1)</script></html>');
      }
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    originPort = (origin.address() as { port: number }).port;
    app = await startTestApp({ env: { MEDIA_MAX_BYTES: '256KiB', MEDIA_REMOTE_FETCH_ALLOW_CIDRS: '127.0.0.1/32', MEDIA_REMOTE_FETCH_TIMEOUT: '5s' } });
    db = new Client({ connectionString: postgresDsn() });
    await db.connect();
  });
  afterAll(async () => {
    await db?.end();
    await app?.close();
    await new Promise((resolve) => origin?.close(resolve));
  });

  const post = (user: string, body: unknown) => app.call('/v1/media', { method: 'POST', user, body: JSON.stringify(body) });
  const rowsOf = async (user: string) =>
    (await db.query<{ id: string; storage_key: string }>('SELECT id, storage_key FROM media_api.media_objects WHERE created_by = $1', [user])).rows;
  const filesOnDisk = async () => new Set(await readdir(join(app.running.config.localStoragePath, 'images')).catch(() => [] as string[]));

  it('refuses bodies over the derived JSON limit with 413 before parsing', async () => {
    const huge = 'A'.repeat(600 * 1024);
    const res = await post(uniqueUser(), { source: { type: 'data_url', data_url: `data:image/png;base64,${huge}` } });
    expect(res.status).toBe(413);
    expect(((await res.json()) as any).code).toBe('payload_too_large');
  });

  it.each([
    ['malformed JSON', '{"source": {"type": "data_url",}}', 'not valid JSON'],
    ['a __proto__ key', '{"source": {"type": "data_url", "__proto__": {"admin": true}}}', '__proto__'],
    ['constructor.prototype', '{"source": {"type": "data_url"}, "constructor": {"prototype": {"admin": true}}}', 'prototype'],
  ])('refuses a JSON body with %s: 400 invalid_request that says why, nothing stored', async (_what, body, why) => {
    const user = uniqueUser();
    const res = await app.call('/v1/media', { method: 'POST', user, body });
    expect(res.status).toBe(400);
    const answer = (await res.json()) as any;
    expect(answer.code).toBe('invalid_request');
    expect(answer.error).toContain(why);
    expect(await rowsOf(user)).toEqual([]);
  });

  it('refuses a data URL whose decoded size is over MEDIA_MAX_BYTES, and empty files', async () => {
    const user = uniqueUser();
    const big = await post(user, { source: { type: 'data_url', data_url: dataUrl(Buffer.alloc(300 * 1024, 7)) } });
    expect(big.status).toBe(413);
    const empty = await post(user, { source: { type: 'data_url', data_url: 'data:image/png;base64,' } });
    expect(empty.status).toBe(400);
    expect(((await empty.json()) as any).code).toBe('empty_file');
    expect(await rowsOf(user)).toEqual([]);
  });

  it('removes ASCII whitespace from a data URL as WHATWG forgiving-base64 does (a form feed alone too), and refuses a vertical tab', async () => {
    const user = uniqueUser();
    const base64 = png.toString('base64');
    const spaced = (ws: string) => `data:image/png;base64,${base64.slice(0, 40)}${ws}${base64.slice(40, 80)}${ws}${base64.slice(80)}${ws}`;
    const sha256 = createHash('sha256').update(png).digest('hex');
    for (const ws of ['\f', '\t', ' \r\n']) {
      const res = await post(user, { source: { type: 'data_url', data_url: spaced(ws) } });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ bytes: png.length, sha256 });
    }
    const other = uniqueUser();
    for (const ws of ['\v', '\n\v', '\u00a0']) {
      const res = await post(other, { source: { type: 'data_url', data_url: spaced(ws) } });
      expect(res.status).toBe(400);
      expect(((await res.json()) as any).code).toBe('invalid_data_url');
    }
    expect(await rowsOf(other)).toEqual([]);
  });

  it('percent-decodes a data URL before its base64, as WHATWG\'s data: URL processor does (%2B, %2F, %3D), and refuses what it decodes to outside the alphabet', async () => {
    // A data URL that went through a URL encoder: browsers load it as the same image.
    let image = png;
    for (let seed = 81; !/[+/]/.test(image.toString('base64')) || image.length % 3 === 0; seed++) image = await pngImage(seed, 24);
    const base64 = image.toString('base64');
    const sha256 = createHash('sha256').update(image).digest('hex');
    const user = uniqueUser();
    const encoded = base64.replaceAll('+', '%2B').replaceAll('/', '%2f').replaceAll('=', '%3D');
    for (const dataUrl of [`data:image/png;base64,${encoded}`, `data:image/png; base64,${base64.slice(0, 30)}%0A${base64.slice(30)}`]) {
      const res = await post(user, { source: { type: 'data_url', data_url: dataUrl } });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ bytes: image.length, sha256 });
    }
    const other = uniqueUser();
    // %2E is ".", %C2%A0 an NBSP, %0B a vertical tab; a lone % or %zz stays as it is: all refused.
    for (const payload of [`${base64.slice(0, 40)}%2E${base64.slice(40)}`, `${base64.slice(0, 40)}%C2%A0${base64.slice(40)}`, `%0B${base64}`, `%${base64}`, `${base64}%zz`]) {
      const res = await post(other, { source: { type: 'data_url', data_url: `data:image/png;base64,${payload}` } });
      expect(res.status).toBe(400);
      expect(((await res.json()) as any).code).toBe('invalid_data_url');
    }
    expect(await rowsOf(other)).toEqual([]);
  });

  it('refuses a data URL whose trailing = makes up for a character outside the alphabet or a dangling one (400 invalid_data_url)', async () => {
    // A PNG of a length divisible by 3 has no padding of its own: its base64 plus ".", or plus a
    // dangling "A", and then "=", decoded to the PNG's exact length and were stored.
    let image = png;
    for (let seed = 78; image.length % 3 !== 0; seed++) image = await pngImage(seed, 24);
    const base64 = image.toString('base64');
    const user = uniqueUser();
    for (const payload of [`${base64.slice(0, 50)}.${base64.slice(50)}=`, `${base64}A=`, `${base64.slice(0, 50)}.\n${base64.slice(50)}=`]) {
      const res = await post(user, { source: { type: 'data_url', data_url: `data:image/png;base64,${payload}` } });
      expect(res.status).toBe(400);
      expect(((await res.json()) as any).code).toBe('invalid_data_url');
    }
    expect(await rowsOf(user)).toEqual([]);
    // The same bytes, properly encoded, are fine.
    expect((await post(user, { source: { type: 'data_url', data_url: `data:image/png;base64,${base64}` } })).status).toBe(200);
  });

  it('reads a data URL in any JSON spelling as JSON.parse does, whether or not it is decoded straight from the body', async () => {
    const image = withTextChunk(await pngImage(81, 40), 'x'.repeat(60 * 1024));
    const other = await pngImage(82, 8);
    const url = dataUrl(image);
    const user = uniqueUser();
    const send = async (body: string) => {
      const res = await app.call('/v1/media', { method: 'POST', user, body });
      expect(res.status).toBe(200);
      return (await res.json()) as { id: string; bytes: number; sha256: string; deduped: boolean };
    };
    const first = await send(JSON.stringify({ source: { type: 'data_url', data_url: url } }));
    expect(first).toMatchObject({ bytes: image.length, sha256: createHash('sha256').update(image).digest('hex'), deduped: false });
    const spellings = [
      // JSON escapes inside the data URL, as PHP's json_encode writes `/`.
      JSON.stringify({ source: { type: 'data_url', data_url: url } }).replaceAll('/', '\\/'),
      // Another `"data:` string before it, and whitespace between the tokens.
      `{ "filename" : "data:x,AAAA" , "source" : { "data_url" : "${url}" , "type" : "data_url" } }`,
      // The same key twice: the last one counts.
      `{"source":{"type":"data_url","data_url":"${dataUrl(other)}","data_url":"${url}"}}`,
    ];
    for (const body of spellings) expect(await send(body)).toMatchObject({ id: first.id, deduped: true });
    const lastWins = await send(`{"source":{"type":"data_url","data_url":"${url}","data_url":"${dataUrl(other)}"}}`);
    expect(lastWins).toMatchObject({ bytes: other.length, deduped: false });
  });

  it('answers a body read straight from its bytes, or almost, as it answers the same body read the usual way', async () => {
    const image = withTextChunk(await pngImage(91, 24), 'y'.repeat(8 * 1024));
    const b64 = image.toString('base64');
    const pad = 'p'.repeat(5 * 1024);
    const unpadded = b64.replace(/=+$/, '');
    const oneMod4 = unpadded + 'A'.repeat((5 - (unpadded.length % 4)) % 4 || 4);
    const bodies: Array<[string, string | Buffer]> = [
      ['fine', `{"source":{"type":"data_url","data_url":"data:image/png;base64,${b64}"}}`],
      ['a __proto__ key after it', `{"source":{"type":"data_url","data_url":"data:image/png;base64,${b64}"},"__proto__":{"admin":true}}`],
      ['constructor.prototype inside source', `{"source":{"type":"data_url","data_url":"data:image/png;base64,${b64}","constructor":{"prototype":{}}}}`],
      ['a trailing comma', `{"source":{"type":"data_url","data_url":"data:image/png;base64,${b64}"},}`],
      ['text after the value', `{"source":{"type":"data_url","data_url":"data:image/png;base64,${b64}"}} x`],
      ['no closing brace', `{"source":{"type":"data_url","data_url":"data:image/png;base64,${b64}"}`],
      ['65 levels', `{"x":${'['.repeat(64)}${']'.repeat(64)},"source":{"type":"data_url","data_url":"data:image/png;base64,${b64}"}}`],
      ['64 levels', `{"x":${'['.repeat(63)}${']'.repeat(63)},"source":{"type":"data_url","data_url":"data:image/png;base64,${b64}"}}`],
      ['a raw newline in the payload', `{"source":{"type":"data_url","data_url":"data:image/png;base64,${b64.slice(0, 100)}\n${b64.slice(100)}"}}`],
      ['a raw tab in the payload', `{"source":{"type":"data_url","data_url":"data:image/png;base64,${b64.slice(0, 100)}\t${b64.slice(100)}"}}`],
      ['= in the middle', `{"source":{"type":"data_url","data_url":"data:image/png;base64,${b64.slice(0, 100)}=${b64.slice(100)}"}}`],
      ['a length of 1 mod 4', `{"source":{"type":"data_url","data_url":"data:image/png;base64,${oneMod4}"}}`],
      ['URL-safe base64', `{"source":{"type":"data_url","data_url":"data:image/png;base64,${b64.replace(/\+/g, '-').replace(/\//g, '_')}"}}`],
      ['not base64', `{"source":{"type":"data_url","data_url":"data:image/png,${b64}"}}`],
      ['an empty payload', `{"source":{"type":"data_url","data_url":"data:image/png;base64,"},"pad":"${pad}"}`],
      ['not an image', `{"source":{"type":"data_url","data_url":"data:image/png;base64,${Buffer.alloc(6 * 1024, 0x41).toString('base64')}"}}`],
      ['over MEDIA_MAX_BYTES', `{"source":{"type":"data_url","data_url":"data:image/png;base64,${Buffer.alloc(300 * 1024, 7).toString('base64')}"}}`],
      ['a remote_url source', `{"source":{"type":"remote_url","data_url":"data:image/png;base64,${b64}"}}`],
      ['an unknown source type', `{"source":{"type":"ftp","data_url":"data:image/png;base64,${b64}"}}`],
      ['a filename too long', `{"source":{"type":"data_url","data_url":"data:image/png;base64,${b64}"},"filename":"${'f'.repeat(1025)}"}`],
      ['a filename that is a number', `{"source":{"type":"data_url","data_url":"data:image/png;base64,${b64}"},"filename":7}`],
      ['a bad user_id', `{"source":{"type":"data_url","data_url":"data:image/png;base64,${b64}"},"user_id":"no spaces allowed"}`],
      ['the data URL as a key', `{"source":{"type":"data_url","data:image/png;base64,${b64}":1}}`],
      ['the data URL in an array', `{"source":{"type":"data_url","data_url":["data:image/png;base64,${b64}"]}}`],
      ['an escaped quote before it', `{"filename":"\\"data:image/png;base64,${b64}","source":{"type":"data_url"}}`],
      ['a byte order mark', `\ufeff{"source":{"type":"data_url","data_url":"data:image/png;base64,${b64}"}}`],
      ['invalid UTF-8 just before it', Buffer.concat([Buffer.from('{"filename":"ab'), Buffer.from([0xe2, 0x82]), Buffer.from(`","source":{"type":"data_url","data_url":"data:image/png;base64,${b64}"}}`)])],
      ['invalid UTF-8 in the filename', Buffer.concat([Buffer.from(`{"source":{"type":"data_url","data_url":"data:image/png;base64,${b64}"},"filename":"`), Buffer.from([0xff, 0xc3]), Buffer.from('"}')])],
    ];
    /** The same JSON value, spelled so that nothing is read straight from the bytes. */
    const usualSpelling = (body: string | Buffer) => {
      const bytes = Buffer.from(body);
      const at = bytes.indexOf('"data:');
      return at < 0 ? bytes : Buffer.concat([bytes.subarray(0, at), Buffer.from('"d\\u0061ta:'), bytes.subarray(at + 6)]);
    };
    const answerTo = async (body: Buffer) => {
      const user = uniqueUser();
      const res = await app.call('/v1/media', { method: 'POST', user, body, headers: { 'content-type': 'application/json' } });
      const answer = (await res.json()) as { code?: string; error?: string; bytes?: number; sha256?: string };
      return { status: res.status, code: answer.code, error: answer.error, bytes: answer.bytes, sha256: answer.sha256, rows: (await rowsOf(user)).length };
    };
    let readStraight = 0;
    for (const [what, body] of bodies) {
      const bytes = Buffer.from(body);
      expect(bytes.length).toBeGreaterThanOrEqual(4 * 1024);
      try {
        if (takeDecodedDataUrl(parseIngestJson(bytes))) readStraight++;
      } catch {
        // Refused either way; the answers below are compared all the same.
      }
      const expected = await answerTo(usualSpelling(bytes));
      expect({ what, answer: await answerTo(bytes) }).toEqual({ what, answer: expected });
    }
    // Most of them were read straight from their bytes before being refused (or stored).
    expect(readStraight).toBeGreaterThanOrEqual(14);
  });

  it('replays a body read straight from its bytes for its Idempotency-Key, and tells another spelling of it apart', async () => {
    const image = withTextChunk(await pngImage(92, 24), 'z'.repeat(8 * 1024));
    const body = JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(image) } });
    expect(takeDecodedDataUrl(parseIngestJson(Buffer.from(body)))).toBeDefined();
    const user = uniqueUser();
    const send = (text: string) => app.call('/v1/media', { method: 'POST', user, body: text, headers: { 'idempotency-key': `k-${user}` } });
    const first = await send(body);
    expect(first.status).toBe(200);
    const firstAnswer = (await first.json()) as { id: string; deduped: boolean };
    const replay = await send(body);
    expect(replay.status).toBe(200);
    expect(await replay.json()).toEqual(firstAnswer);
    // The same JSON value in other bytes is another request for the key (its bytes are compared).
    const respelled = await send(body.replace('"data:', '"d\\u0061ta:'));
    expect(respelled.status).toBe(422);
    expect(((await respelled.json()) as { code: string }).code).toBe('idempotency_key_reused');
    expect(await rowsOf(user)).toHaveLength(1);
  });

  it('sniffs the type: SVG and HTML are 415 whatever they claim, truncated images 422', async () => {
    const user = uniqueUser();
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>');
    const svgRes = await post(user, { source: { type: 'data_url', data_url: dataUrl(svg, 'image/png') } });
    expect(svgRes.status).toBe(415);
    expect(((await svgRes.json()) as any).code).toBe('unsupported_media_type');
    const truncated = await post(user, { source: { type: 'data_url', data_url: dataUrl(png.subarray(0, png.length - 40)) } });
    expect(truncated.status).toBe(422);
    expect(((await truncated.json()) as any).code).toBe('corrupt_image');
    expect(await rowsOf(user)).toEqual([]);
  });

  it('answers 422 corrupt_image for PNGs whole outside but broken inside, as before the cheap PNG check', async () => {
    // Every chunk present with a good CRC, so the structure check passes them and the decode check
    // (png-check.ts, then sharp) must find what is wrong inside the pixel stream.
    const chunk = (type: string, data: Buffer) => {
      const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
      const framed = Buffer.alloc(12 + data.length);
      framed.writeUInt32BE(data.length, 0);
      body.copy(framed, 4);
      framed.writeUInt32BE(zlib.crc32(body), 8 + data.length);
      return framed;
    };
    const [width, height] = [100, 6];
    const stride = width * 3 + 1;
    const rows = Buffer.alloc(height * stride);
    for (let i = 0; i < stride; i++) rows[i] = i === 0 ? 1 : (i * 37) & 0xff;
    // The same row again and again: the stream copies each from the one before, 301 bytes back.
    for (let row = 1; row < height; row++) rows.copy(rows, row * stride, 0, stride);
    const ihdr = Buffer.from([0, 0, 0, width, 0, 0, 0, height, 8, 2, 0, 0, 0]);
    const build = (stream: Buffer) =>
      Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), chunk('IHDR', ihdr), chunk('IDAT', stream), chunk('IEND', Buffer.alloc(0))]);
    const badFilter = Buffer.from(rows);
    badFilter[3 * stride] = 5;
    // A zlib header declaring a 256-byte window: libpng finds the 301-byte back-reference too far.
    const narrow = zlib.deflateSync(rows);
    narrow[0] = 0x08;
    narrow[1] = 31 - ((narrow[0] * 256) % 31);
    const cases: Record<string, Buffer> = {
      'IDAT stream cut short': build(zlib.deflateSync(rows).subarray(0, -8)),
      'filter byte 5': build(zlib.deflateSync(badFilter)),
      'a row missing': build(zlib.deflateSync(rows.subarray(0, -stride))),
      'a zlib window too small for its back-references': build(narrow),
    };
    const user = uniqueUser();
    for (const [name, bytes] of Object.entries(cases)) {
      const res = await post(user, { source: { type: 'data_url', data_url: dataUrl(bytes) } });
      expect({ name, status: res.status, code: ((await res.json()) as any).code }).toEqual({ name, status: 422, code: 'corrupt_image' });
    }
    expect(await rowsOf(user)).toEqual([]);
    const whole = await post(user, { source: { type: 'data_url', data_url: dataUrl(build(zlib.deflateSync(rows))) } });
    expect(whole.status).toBe(200);
    expect(((await whole.json()) as any).id).toEqual(expect.any(String));
  });

  it('refuses a large baseline JPEG cut off in its last row of blocks, which a shrinking decode never reads', async () => {
    // 1200×900: 900 is not a multiple of the 16-row blocks, and a JPEG of over 256K pixels is
    // decoded through an 8×8 shrink that stops before the last, partial row.
    const width = 1200;
    const height = 900;
    const raw = Buffer.alloc(width * height * 3);
    for (let i = 0; i < raw.length; i++) raw[i] = (i % (width * 3)) / 15 + i / (width * 3 * 4);
    const jpeg = await sharp(raw, { raw: { width, height, channels: 3 } }).jpeg().toBuffer();
    const user = uniqueUser();
    for (const cut of [2, 300]) {
      const res = await post(user, { source: { type: 'data_url', data_url: dataUrl(jpeg.subarray(0, jpeg.length - cut), 'image/jpeg') } });
      expect(res.status).toBe(422);
      expect(((await res.json()) as any).code).toBe('corrupt_image');
    }
    expect(await rowsOf(user)).toEqual([]);
    const whole = await post(user, { source: { type: 'data_url', data_url: dataUrl(jpeg, 'image/jpeg') } });
    expect(whole.status).toBe(200);
  });

  it('measures a GIF by its logical screen, which viewers allocate, not by its frames alone', async () => {
    /** A GIF89a whose logical screen is `width`×`height`, holding one 1×1 frame. */
    const gif = (width: number, height: number) => {
      const screen = Buffer.from([0, 0, 0, 0, 0x80, 0, 0]);
      screen.writeUInt16LE(width, 0);
      screen.writeUInt16LE(height, 2);
      return Buffer.concat([Buffer.from('GIF89a'), screen, Buffer.from('000000ffffff2c0000000001000100000202' + '4c0100' + '3b', 'hex')]);
    };
    const user = uniqueUser();
    for (const [width, height] of [[65_535, 65_535], [30_000, 1]]) {
      const res = await post(user, { source: { type: 'data_url', data_url: dataUrl(gif(width, height), 'image/gif') } });
      expect(res.status).toBe(422);
      expect(((await res.json()) as any).code).toBe('image_too_large');
    }
    expect(await rowsOf(user)).toEqual([]);
    const small = await post(user, { source: { type: 'data_url', data_url: dataUrl(gif(64, 48), 'image/gif') } });
    expect(small.status).toBe(200);
  });

  it('stores the sniffed type, not the declared one', async () => {
    const res = await post(uniqueUser(), { source: { type: 'data_url', data_url: dataUrl(await pngImage(78), 'image/gif') } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).mime).toBe('image/png');
  });

  it('ingests multipart uploads with the same checks and response shape', async () => {
    const user = uniqueUser();
    const form = new FormData();
    form.append('user_id', user);
    form.append('file', new Blob([png], { type: 'application/octet-stream' }), 'cat.png');
    const ok = await app.call('/v1/media/upload', { method: 'POST', body: form });
    expect(ok.status).toBe(200);
    const body = (await ok.json()) as any;
    expect(body).toMatchObject({ mime: 'image/png', bytes: png.length, deduped: false, url: expect.any(String), presigned_url: expect.any(String) });
    expect((await rowsOf(user)).map((r) => r.id)).toEqual([body.id]);

    const tooBig = new FormData();
    tooBig.append('file', new Blob([Buffer.concat([png, Buffer.alloc(300 * 1024)])]), 'big.png');
    const big = await app.call('/v1/media/upload', { method: 'POST', user, body: tooBig });
    expect(big.status).toBe(413);

    const noFile = new FormData();
    noFile.append('user_id', user);
    expect((await app.call('/v1/media/upload', { method: 'POST', body: noFile })).status).toBe(400);
    expect((await app.call('/v1/media/upload', { method: 'POST', user, body: '{}' })).status).toBe(400);
  });

  it('refuses a multipart body past MEDIA_MAX_BYTES however little of it is the file: 413 while it streams, nothing stored', async () => {
    // busboy cuts a text field at 4 KiB but reads (and drops) the rest of it, so fields before the
    // file, or the part headers, could make a body of any size out of a small image.
    const user = uniqueUser();
    const image = await pngImage(7_101, 24);
    const boundary = 'over-the-limit';
    const field = (name: string, value: string) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
    const filePart = (bytes: Buffer) =>
      Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="cat.png"\r\nContent-Type: image/png\r\n\r\n`),
        bytes,
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]);
    const padding = Array.from({ length: 9 }, (_, i) => field(`note${i}`, 'x'.repeat(100 * 1024))).join('');
    const body = Buffer.concat([Buffer.from(padding), filePart(image)]);
    // A file over the limit itself, too: it is not read to its end either.
    const bigFile = filePart(withTextChunk(image, 'x'.repeat(1024 * 1024)));
    const send = (payload: Buffer | ReadableStream<Uint8Array>) =>
      app.call('/v1/media/upload', { method: 'POST', user, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body: payload, duplex: 'half' } as RequestInit);
    const imagesBefore = await filesOnDisk();
    // Declared up front, and sent chunked without a length: the limit holds either way.
    const chunked = (bytes: Buffer) =>
      new ReadableStream<Uint8Array>({
        start(controller) {
          for (let at = 0; at < bytes.length; at += 64 * 1024) controller.enqueue(bytes.subarray(at, at + 64 * 1024));
          controller.close();
        },
      });
    for (const res of [await send(body), await send(chunked(body)), await send(chunked(bigFile))]) {
      expect(res.status).toBe(413);
      // The rest of the body is not read: the connection goes, rather than wait for it.
      expect(res.headers.get('connection')).toBe('close');
      expect(await res.json()).toMatchObject({ code: 'payload_too_large', details: { max_bytes: 256 * 1024 } });
    }
    expect(await rowsOf(user)).toEqual([]);
    expect(await filesOnDisk()).toEqual(imagesBefore);

    // A file of exactly MEDIA_MAX_BYTES with its user_id and the form around it still fits.
    const full = withTextChunk(image, 'x'.repeat(256 * 1024 - image.length - 12 - 'Comment'.length - 1));
    expect(full.length).toBe(256 * 1024);
    const form = new FormData();
    form.append('user_id', user);
    form.append('file', new Blob([full], { type: 'image/png' }), `${'n'.repeat(255)}.png`);
    const ok = await app.call('/v1/media/upload', { method: 'POST', body: form });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ bytes: full.length });
  });

  /** Totals of the ingest and deletion counters on /metrics, summed over their labels. */
  async function counters(): Promise<Record<'media_ingest_total' | 'media_deleted_total' | 'media_ingest_rejected_total', number>> {
    const text = await (await fetch(`${app.baseUrl}/metrics`)).text();
    const sum = (name: string) =>
      text
        .split('\n')
        .filter((line) => line.startsWith(`${name}{`) || line.startsWith(`${name} `))
        .reduce((total, line) => total + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
    return { media_ingest_total: sum('media_ingest_total'), media_deleted_total: sum('media_deleted_total'), media_ingest_rejected_total: sum('media_ingest_rejected_total') };
  }

  it('counts an upload with no scanner configured as a skipped scan on /metrics, never a clean one', async () => {
    const scans = async () => {
      const text = await (await fetch(`${app.baseUrl}/metrics`)).text();
      const count = (outcome: string) =>
        Number(new RegExp(`^media_scan_duration_seconds_count\\{scanner="none",outcome="${outcome}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
      return { skipped: count('skipped'), clean: count('clean') };
    };
    const before = await scans();
    expect((await post(uniqueUser(), { source: { type: 'data_url', data_url: dataUrl(await pngImage(79)) } })).status).toBe(200);
    const after = await scans();
    expect(after.skipped).toBe(before.skipped + 1);
    expect(after.clean).toBe(0);
  });

  it('refuses malformed multipart bodies, and a user_id after the file, with 400 and stores nothing', async () => {
    const user = uniqueUser();
    const raw = (contentType: string, body: Buffer | string) =>
      app.call('/v1/media/upload', { method: 'POST', user, headers: { 'content-type': contentType }, body });
    const cut = Buffer.concat([
      Buffer.from('--XX\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n'),
      png.subarray(0, 200),
    ]);
    for (const res of [
      await raw('multipart/form-data', png),
      await raw('multipart/form-data; boundary=XX', 'garbage'),
      await raw('multipart/form-data; boundary=XX', cut),
    ]) {
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ code: 'invalid_request', request_id: expect.any(String) });
    }
    // A `file` part without a filename is a text field to busboy: the answer says so, not "no file".
    const noFilename = await raw(
      'multipart/form-data; boundary=XX',
      Buffer.concat([Buffer.from('--XX\r\nContent-Disposition: form-data; name="file"\r\nContent-Type: image/png\r\n\r\n'), png.subarray(0, 2000), Buffer.from('\r\n--XX--\r\n')]),
    );
    expect(noFilename.status).toBe(400);
    expect(await noFilename.json()).toMatchObject({ code: 'invalid_request', error: expect.stringContaining('has no filename') });
    expect(await rowsOf(user)).toEqual([]);

    // A user_id after the file would name an owner the upload was not stored for: refused, and
    // what was stored for the service on the way is removed again.
    const fresh = await pngImage(7_001, 24);
    const serviceRows = async () =>
      (await db.query(`SELECT id FROM media_api.media_objects WHERE sha256 = $1 AND created_by LIKE 'service:%'`, [createHash('sha256').update(fresh).digest('hex')])).rows;
    const late = new FormData();
    late.append('file', new Blob([fresh], { type: 'image/png' }), 'cat.png');
    late.append('user_id', user);
    const metricsBefore = await counters();
    const requestId = `late-owner-${Date.now()}`;
    const refused = await app.call('/v1/media/upload', { method: 'POST', body: late, headers: { 'x-request-id': requestId } });
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ code: 'invalid_request', error: expect.stringContaining('user_id') });
    expect(await rowsOf(user)).toEqual([]);
    expect(await serviceRows()).toEqual([]);
    // The trail and the metrics show one refused ingest: no accepted upload, no deletion.
    expect(await auditRows(app, 'request_id = $1', [requestId])).toEqual([
      expect.objectContaining({ action: 'media.ingest', outcome: 'failure', reason_code: 'invalid_request', media_id: null, details: { source: 'multipart', owner: `service:${SERVICE_KEY_ID}` } }),
    ]);
    const metricsAfter = await counters();
    expect(metricsAfter.media_ingest_total).toBe(metricsBefore.media_ingest_total);
    expect(metricsAfter.media_deleted_total).toBe(metricsBefore.media_deleted_total);
    expect(metricsAfter.media_ingest_rejected_total).toBe(metricsBefore.media_ingest_rejected_total + 1);

    // One that names the owner the file was stored for changes nothing; nor does a second file.
    const agreeing = new FormData();
    agreeing.append('file', new Blob([fresh], { type: 'image/png' }), 'cat.png');
    agreeing.append('user_id', user);
    agreeing.append('file', new Blob([png], { type: 'image/png' }), 'second.png');
    const kept = await app.call('/v1/media/upload', { method: 'POST', user, body: agreeing });
    expect(kept.status).toBe(200);
    expect((await rowsOf(user)).map((r) => r.id)).toEqual([((await kept.json()) as any).id]);
  });

  it('refuses an empty user id rather than storing the upload as the service\'s own', async () => {
    const body = JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(png) } });
    const emptyInBody = await app.call('/v1/media', { method: 'POST', body: JSON.stringify({ user_id: '', source: { type: 'data_url', data_url: dataUrl(png) } }) });
    expect(emptyInBody.status).toBe(400);
    expect(await emptyInBody.json()).toMatchObject({ code: 'invalid_request' });
    const blankHeader = await app.call('/v1/media', { method: 'POST', headers: { 'x-jan-user-id': '   ' }, body });
    expect(blankHeader.status).toBe(400);
    const emptyForm = new FormData();
    emptyForm.append('user_id', '');
    emptyForm.append('file', new Blob([png], { type: 'image/png' }), 'cat.png');
    expect((await app.call('/v1/media/upload', { method: 'POST', body: emptyForm })).status).toBe(400);
  });

  it('fetches remote URLs from allow-listed loopback, maps upstream errors, refuses non-images', async () => {
    const user = uniqueUser();
    const ok = await post(user, { source: { type: 'remote_url', url: `http://127.0.0.1:${originPort}/cat.png` } });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as any).bytes).toBe(png.length);
    const missing = await post(user, { source: { type: 'remote', url: `http://127.0.0.1:${originPort}/missing.png` } });
    expect(missing.status).toBe(502);
    expect(((await missing.json()) as any).code).toBe('remote_fetch_failed');
    const html = await post(user, { source: { type: 'remote_url', url: `http://127.0.0.1:${originPort}/page` } });
    expect(html.status).toBe(415);
    const ftp = await post(user, { source: { type: 'remote_url', url: 'ftp://127.0.0.1/x.png' } });
    expect(ftp.status).toBe(400);
    expect(((await ftp.json()) as any).code).toBe('remote_fetch_blocked');
  });

  it('blocks loopback by default: the origin sees no request', async () => {
    const strict = await startTestApp();
    try {
      const before = originHits;
      for (const host of ['127.0.0.1', '2130706433', '0x7f.1', 'localhost', '[::ffff:127.0.0.1]']) {
        const res = await strict.call('/v1/media', {
          method: 'POST',
          user: uniqueUser(),
          body: JSON.stringify({ source: { type: 'remote_url', url: `http://${host}:${originPort}/cat.png` } }),
        });
        expect(res.status).toBe(400);
        expect(((await res.json()) as any).code).toBe('remote_fetch_blocked');
      }
      expect(originHits).toBe(before);
    } finally {
      await strict.close();
    }
  });

  it('counts and audits refusals made before the pipeline as it does the pipeline\'s own', async () => {
    const user = uniqueUser();
    const counted = async () => {
      const text = await (await fetch(`${app.baseUrl}/metrics`)).text();
      const value = (source: string, code: string) =>
        Number(new RegExp(`^media_ingest_rejected_total\\{source="${source}",code="${code}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
      return { badDataUrl: value('data_url', 'invalid_data_url'), blocked: value('remote_url', 'remote_fetch_blocked'), failed: value('remote_url', 'remote_fetch_failed'), corrupt: value('data_url', 'corrupt_image') };
    };
    const before = await counted();
    const tag = `rejections-${user}`;
    const send = (n: number, source: unknown) =>
      app.call('/v1/media', { method: 'POST', user, headers: { 'x-request-id': `${tag}-${n}` }, body: JSON.stringify({ source }) });
    expect((await send(1, { type: 'data_url', data_url: 'data:image/png;base64,!!!' })).status).toBe(400);
    expect((await send(2, { type: 'remote_url', url: 'ftp://127.0.0.1/x.png' })).status).toBe(400);
    expect((await send(3, { type: 'remote_url', url: `http://127.0.0.1:${originPort}/missing.png` })).status).toBe(502);
    expect((await send(4, { type: 'data_url', data_url: dataUrl(png.subarray(0, png.length - 40)) })).status).toBe(422);
    expect(await counted()).toEqual({ badDataUrl: before.badDataUrl + 1, blocked: before.blocked + 1, failed: before.failed + 1, corrupt: before.corrupt + 1 });

    const rows = await auditRows(app, `request_id LIKE $1 AND action = 'media.ingest'`, [`${tag}-%`]);
    expect(rows.map((r) => [r.request_id, r.outcome, r.reason_code])).toEqual([
      [`${tag}-1`, 'failure', 'invalid_data_url'],
      [`${tag}-2`, 'failure', 'remote_fetch_blocked'],
      [`${tag}-3`, 'failure', 'remote_fetch_failed'],
      [`${tag}-4`, 'failure', 'corrupt_image'],
    ]);
  });

  it('turns 50 concurrent identical uploads by one owner into one row and one object', async () => {
    const user = uniqueUser();
    const bytes = await pngImage(79, 20);
    const results = await Promise.all(
      Array.from({ length: 50 }, () => post(user, { source: { type: 'data_url', data_url: dataUrl(bytes) } }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }))),
    );
    expect(results.map((r) => r.status)).toEqual(Array(50).fill(200));
    const ids = new Set(results.map((r) => r.body.id));
    expect(ids.size).toBe(1);
    expect(results.filter((r) => !r.body.deduped)).toHaveLength(1);
    const rows = await rowsOf(user);
    expect(rows).toHaveLength(1);
    const files = [...(await filesOnDisk())].filter((f) => f.startsWith(rows[0].id));
    expect(files).toEqual([rows[0].storage_key.slice('images/'.length)]);
  });

  it('never answers 5xx and never leaves a row without its object, whatever the data URL (property)', async () => {
    const user = uniqueUser();
    const valid = dataUrl(await pngImage(80));
    const dataUrls = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.base64String({ maxLength: 400 }).map((b) => `data:image/png;base64,${b}`),
      fc.uint8Array({ maxLength: 600 }).map((b) => dataUrl(Buffer.from(b))),
      fc.nat({ max: valid.length }).map((cut) => valid.slice(0, cut)),
      fc.constantFrom(valid, 'data:;base64,', 'data:image/png;base64,====', 'data:image/svg+xml;base64,PHN2Zz4='),
    );
    const bodies = fc.oneof(
      dataUrls.map((d) => ({ source: { type: 'data_url', data_url: d } })),
      fc.jsonValue().map((v) => ({ source: v })),
      fc.record({ source: fc.record({ type: fc.string(), data_url: fc.option(fc.string()), url: fc.option(fc.string()) }) }),
    );
    await fc.assert(
      fc.asyncProperty(bodies, async (body) => {
        const res = await post(user, body);
        expect(res.status).toBeLessThan(500);
      }),
      { numRuns: 80 },
    );
    const files = await filesOnDisk();
    for (const row of await rowsOf(user)) expect(files.has(row.storage_key.slice('images/'.length))).toBe(true);
  });

  it("refuses a service's user_id that no header could carry, without touching other users' uploads", async () => {
    // A service names the owner in the body; the same rule as X-Jan-User-Id applies there.
    const bad = ['a\u0000b', 'tab\there', 'é'.repeat(3), 'x'.repeat(201)];
    const good = uniqueUser();
    const image = dataUrl(await pngImage(78, 24));
    const answers = await Promise.all([
      ...bad.map((userId) => app.call('/v1/media', { method: 'POST', body: JSON.stringify({ source: { type: 'data_url', data_url: image }, user_id: userId }) })),
      post(good, { source: { type: 'data_url', data_url: image } }),
    ]);
    for (const res of answers.slice(0, bad.length)) {
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ code: 'invalid_request' });
    }
    expect(answers[bad.length].status).toBe(200);
    expect(await rowsOf(good)).toHaveLength(1);
    for (const userId of bad) expect(await rowsOf(userId.replace(/\u0000/g, ''))).toEqual([]);
  });
});

/** The JSON body limit derived from MEDIA_MAX_BYTES, at a size where the 64 KiB of slack for the JSON around the data URL is no longer most of it. */
describe('data URLs of an image at the size limit', () => {
  const MAX_BYTES = 4 * 1024 * 1024;
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ env: { MEDIA_MAX_BYTES: String(MAX_BYTES) } });
  });
  afterAll(async () => {
    await app?.close();
  });
  const post = (user: string, body: unknown) => app.call('/v1/media', { method: 'POST', user, body: JSON.stringify(body) });

  it('accepts an image of exactly MEDIA_MAX_BYTES whose base64 is wrapped in lines, or written with escaped slashes', async () => {
    const base = await pngImage(79);
    const image = withTextChunk(base, 'x'.repeat(MAX_BYTES - base.length - 12 - 'Comment'.length - 1));
    expect(image.length).toBe(MAX_BYTES);
    const user = uniqueUser();
    const base64 = image.toString('base64');
    // MIME and PEM line lengths, CRLF: the whitespace data URLs may carry, written as JSON escapes.
    for (const width of [76, 64]) {
      const wrapped = base64.replace(new RegExp(`(.{${width}})`, 'g'), '$1\r\n');
      const res = await post(user, { source: { type: 'data_url', data_url: `data:image/png;base64,${wrapped}` } });
      expect(res.status).toBe(200);
      expect(((await res.json()) as any).bytes).toBe(image.length);
    }
    // PHP's json_encode writes every `/` as `\/`.
    const escaped = JSON.stringify({ source: { type: 'data_url', data_url: `data:image/png;base64,${base64}` } }).replaceAll('/', '\\/');
    const res = await app.call('/v1/media', { method: 'POST', user, body: escaped });
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).deduped).toBe(true);
  });
});
