import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { APIConnectionTimeoutError, createMediaMigration } from '../../src/index';

// The dual-write time budget against a real socket: a TCP server that accepts connections and
// never answers, as a wedged Media API (or a proxy in front of it) does.

const DATA_URL = 'data:image/png;base64,iVBORw0KGgo=';
const BUDGET_MS = 300;
// Generous for a loaded CI machine, yet far below what per-attempt timeouts plus retries take:
// three attempts of 300 ms and backoffs of at least 750 + 1500 ms (retry.initialDelayMs 1000).
const UPPER_BOUND_MS = 2_000;

describe('dual-write time budget (loopback)', () => {
  let server: Server;
  let baseURL: string;
  const sockets = new Set<Socket>();

  beforeAll(async () => {
    server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  function migration() {
    return createMediaMigration({
      enabled: true,
      dualWriteTimeoutMs: BUDGET_MS,
      // Default retry count (2); a longer first backoff makes the per-attempt behaviour obvious.
      clientOptions: { baseURL, serviceKey: 'k', env: {}, propagator: false, retry: { initialDelayMs: 1_000 } },
      env: {},
    });
  }

  it('bounds dualWriteIngest by dualWriteTimeoutMs across attempts and backoff', async () => {
    const errors: unknown[] = [];
    const started = performance.now();
    const result = await migration().dualWriteIngest(DATA_URL, { userId: 'u', onError: (e) => errors.push(e) });
    const elapsed = performance.now() - started;
    expect(result.ref).toBeNull();
    expect(result.error).toBeInstanceOf(APIConnectionTimeoutError);
    expect(String((result.error as Error).message)).toMatch(/300 ms/);
    expect(errors).toEqual([result.error]);
    expect(elapsed).toBeGreaterThanOrEqual(BUDGET_MS - 20);
    expect(elapsed).toBeLessThan(UPPER_BOUND_MS);
  });

  it('bounds a whole dualWriteBody by the same budget, however many images wait in line', async () => {
    const body = {
      messages: [
        {
          role: 'user',
          content: Array.from({ length: 6 }, (_, i) => ({
            type: 'image_url',
            image_url: { url: `data:image/png;base64,iVBORw0KGgo${'A'.repeat(i * 4)}=` },
          })),
        },
      ],
    };
    const started = performance.now();
    const result = await migration().dualWriteBody(body, { userId: 'u', concurrency: 2 });
    const elapsed = performance.now() - started;
    expect(result.images).toHaveLength(6);
    expect(result.images.every((i) => i.ref === null && i.error instanceof APIConnectionTimeoutError)).toBe(true);
    expect(result.body).toBe(body);
    expect(elapsed).toBeLessThan(UPPER_BOUND_MS);
  });
});
