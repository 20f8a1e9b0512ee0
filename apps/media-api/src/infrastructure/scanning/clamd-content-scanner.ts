import { createConnection, type Socket } from 'node:net';
import { ContentScanner, DomainError, type ScanSubject, type ScanVerdict } from '@jan/domain';

export interface ClamdOptions {
  /** `host:port`, or the path of clamd's unix socket. */
  address: string;
  /** clamd's `StreamMaxLength`: clamd drops the connection past it, so larger subjects are refused here. */
  maxBytes: number;
  timeoutMs: number;
}

/**
 * ClamAV's daemon over its INSTREAM protocol: `zINSTREAM\0`, the bytes as length-prefixed chunks,
 * a zero-length chunk, then one NUL-terminated reply: `stream: OK`, `stream: <signature> FOUND`
 * or `... ERROR`. Anything but a verdict — refused connection, timeout, an ERROR reply, a
 * connection closed early — is `scanner_unavailable`, so uploads fail closed.
 */
export class ClamdContentScanner extends ContentScanner {
  readonly name = 'clamd';

  constructor(private readonly options: ClamdOptions) {
    super();
  }

  async scan(subject: ScanSubject): Promise<ScanVerdict> {
    if (subject.bytes > this.options.maxBytes) {
      throw unavailable(`the image (${subject.bytes} bytes) is larger than clamd accepts (MEDIA_SCANNER_CLAMD_MAX_BYTES=${this.options.maxBytes})`);
    }
    const reply = await this.exchange(async (socket) => {
      socket.write('zINSTREAM\0');
      for await (const chunk of subject.open()) {
        // clamd may answer (an ERROR) and close before all is sent: stop reading the image then.
        if (socket.destroyed) return;
        const data = chunk as Uint8Array;
        const length = Buffer.alloc(4);
        length.writeUInt32BE(data.length);
        socket.write(length);
        if (!socket.write(data)) {
          await new Promise((resolve) => {
            socket.once('drain', resolve);
            socket.once('close', resolve);
          });
        }
      }
      socket.write(Buffer.alloc(4));
    });
    return verdictOf(reply);
  }

  async ping(): Promise<boolean> {
    const reply = await this.exchange(async (socket) => {
      socket.write('zPING\0');
    });
    return reply === 'PONG';
  }

  /** One connection: `send` writes the command, the NUL-terminated reply is returned. */
  private exchange(send: (socket: Socket) => Promise<void>): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const { address, timeoutMs } = this.options;
      const socket = address.startsWith('/') ? createConnection({ path: address }) : createConnection(hostPort(address));
      const chunks: Buffer[] = [];
      let settled = false;
      const finish = (error: Error | null, reply?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        if (error) reject(error);
        else resolve(reply!);
      };
      const timer = setTimeout(() => finish(unavailable(`clamd did not answer within ${timeoutMs} ms`)), timeoutMs);
      socket.on('error', (error) => finish(unavailable(`clamd at ${address}: ${error.message}`)));
      socket.on('data', (data) => {
        chunks.push(data);
        const all = Buffer.concat(chunks);
        const end = all.indexOf(0);
        if (end >= 0) finish(null, all.subarray(0, end).toString('utf8').trim());
      });
      socket.on('close', () => finish(unavailable('clamd closed the connection without a verdict')));
      socket.once('connect', () => {
        send(socket).catch((error: unknown) => finish(error instanceof Error ? error : new Error(String(error))));
      });
    });
  }
}

/** `stream: OK` → clean, `stream: <name> FOUND` → rejected; anything else is not a verdict. */
export function verdictOf(reply: string): ScanVerdict {
  const body = reply.replace(/^stream:\s*/, '');
  if (body === 'OK') return { verdict: 'clean' };
  const found = /^(.+) FOUND$/.exec(body);
  if (found) return { verdict: 'rejected', reason: found[1]! };
  throw unavailable(`clamd answered ${JSON.stringify(reply.slice(0, 200))}`);
}

function hostPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at).replace(/^\[|\]$/g, '') || '127.0.0.1', port: Number(address.slice(at + 1)) };
}

function unavailable(message: string): DomainError {
  return new DomainError('scanner_unavailable', 'the content scanner is not answering; try again later', { scanner: 'clamd' }, { cause: new Error(message) });
}
