import { Logger, type ArgumentsHost } from '@nestjs/common';
import { DomainError } from '@jan/domain';
import { DomainExceptionFilter } from './domain-exception.filter';

/** A reply that records what the filter sends, and the host Nest would hand the filter. */
function hostFor(headers: Record<string, string> = {}) {
  const sent: { status?: number; body?: unknown } = {};
  const reply = {
    sent: false,
    status(code: number) {
      sent.status = code;
      return reply;
    },
    header() {
      return reply;
    },
    send(body: unknown) {
      sent.body = body;
      return reply;
    },
  };
  const request = { id: 'req-1', url: '/v1/media', method: 'POST', headers };
  const host = { switchToHttp: () => ({ getRequest: () => request, getResponse: () => reply }) } as unknown as ArgumentsHost;
  return { host, sent };
}

describe('DomainExceptionFilter logging', () => {
  let warn: jest.SpyInstance;
  let error: jest.SpyInstance;
  beforeEach(() => {
    warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    error = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
  });
  afterEach(() => jest.restoreAllMocks());

  it.each(['remote_fetch_failed', 'remote_fetch_timeout'] as const)('logs %s, a URL the client named, as a warning without a stack', (code) => {
    const { host, sent } = hostFor();
    new DomainExceptionFilter().catch(new DomainError(code, 'getaddrinfo ENOTFOUND nowhere.invalid'), host);
    expect(sent.status).toBe(code === 'remote_fetch_failed' ? 502 : 504);
    expect(error).not.toHaveBeenCalled();
    expect(warn).toHaveBeenCalledWith({ request_id: 'req-1', code, reason: 'getaddrinfo ENOTFOUND nowhere.invalid' }, 'remote fetch failed');
  });

  it('still logs other 5xx answers as errors, with the exception for its stack', () => {
    const { host, sent } = hostFor();
    const failure = new Error('boom');
    new DomainExceptionFilter().catch(failure, host);
    expect(sent.status).toBe(500);
    expect(error).toHaveBeenCalledWith({ err: failure, request_id: 'req-1', code: 'internal_error' }, 'request failed');
  });

  it('puts the caller\'s W3C trace id on its error lines', () => {
    const { host } = hostFor({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' });
    const failure = new Error('boom');
    new DomainExceptionFilter().catch(failure, host);
    expect(error).toHaveBeenCalledWith(
      { err: failure, request_id: 'req-1', trace_id: '4bf92f3577b34da6a3ce929d0e0e4736', code: 'internal_error' },
      'request failed',
    );
  });
});
