import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  /** Path and query as received. */
  url: string;
  headers: http.IncomingHttpHeaders;
}

/**
 * A loopback HTTP proxy in front of a stand-in: forwards every request unchanged and records
 * what arrived. Shows what an adapter really SENDS where the stand-in ignores it (CMEK
 * parameters, ACLs), and gives presigned URLs a second origin (a "public endpoint").
 */
export async function startRecordingProxy(
  target: string,
  options: {
    stallAfterBytes?: (request: RecordedRequest) => number | undefined;
    /** Answers a request in place of the stand-in (what the stand-in does not implement); undefined forwards it. */
    answer?: (request: RecordedRequest) => Promise<{ status: number; headers?: http.OutgoingHttpHeaders; body?: string } | undefined>;
  } = {},
): Promise<{ origin: string; requests: RecordedRequest[]; close: () => Promise<void> }> {
  const upstream = new URL(target);
  if (!/^(127\.|\[::1\]|localhost$)/.test(upstream.hostname)) throw new Error(`proxy target must be loopback, got ${upstream.hostname}`);
  const requests: RecordedRequest[] = [];
  const server = http.createServer((req, res) => {
    const recorded: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', headers: { ...req.headers } };
    requests.push(recorded);
    if (options.answer) {
      req.pause();
      void options.answer(recorded).then(
        (own) => {
          if (!own) return forwardTo(req, res, recorded);
          req.resume();
          res.writeHead(own.status, own.headers);
          res.end(own.body);
        },
        () => res.destroy(),
      );
      return;
    }
    forwardTo(req, res, recorded);
  });
  const forwardTo = (req: http.IncomingMessage, res: http.ServerResponse, recorded: RecordedRequest) => {
    const stallAt = options.stallAfterBytes?.(recorded);
    const forward = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        if (stallAt === undefined) return void answer.pipe(res);
        // A bucket that stops sending midway: the first bytes, then nothing, connection open.
        let left = stallAt;
        answer.on('data', (chunk: Buffer) => {
          if (left > 0) res.write(chunk.subarray(0, left));
          left -= chunk.length;
          if (left <= 0) answer.pause();
        });
      },
    );
    forward.on('error', () => res.destroy());
    req.on('error', () => forward.destroy());
    req.pipe(forward);
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
