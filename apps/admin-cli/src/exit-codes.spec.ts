import {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
} from '@jan/media-client';
import { CliError, errorReport, ExitCode, exitCodeFor, UsageError } from './exit-codes';

const error = (status: number, body: object = { error: 'boom', code: 'x', request_id: 'req-1' }) =>
  APIError.generate(status, body as never, new Headers());

describe('exit codes', () => {
  it.each([
    [400, ExitCode.Usage],
    [422, ExitCode.Usage],
    [401, ExitCode.Auth],
    [403, ExitCode.Auth],
    [404, ExitCode.NotFound],
    [409, ExitCode.Unexpected],
    [429, ExitCode.Server],
    [500, ExitCode.Server],
    [503, ExitCode.Server],
  ])('maps HTTP %i to exit %i', (status, code) => {
    expect(exitCodeFor(error(status))).toBe(code);
  });

  it('maps a 404 route_not_found (a wrong --url) to the usage code, with a hint, not to "not found"', () => {
    const wrongUrl = error(404, { error: 'route not found', code: 'route_not_found', request_id: 'r-1' });
    expect(exitCodeFor(wrongUrl)).toBe(ExitCode.Usage);
    expect(errorReport(wrongUrl)).toMatchObject({ code: 'route_not_found', exit_code: ExitCode.Usage, error: expect.stringContaining('--url') });
  });

  it('maps connection failures and timeouts to the server code, CLI errors to their own', () => {
    expect(exitCodeFor(new APIConnectionError())).toBe(ExitCode.Server);
    expect(exitCodeFor(new APIConnectionTimeoutError())).toBe(ExitCode.Server);
    expect(exitCodeFor(new UsageError('bad'))).toBe(ExitCode.Usage);
    expect(exitCodeFor(new CliError('no', ExitCode.Cancelled))).toBe(ExitCode.Cancelled);
    expect(exitCodeFor(new Error('bug'))).toBe(ExitCode.Unexpected);
  });

  it('reports API errors with the service code, status and request id', () => {
    expect(errorReport(error(404, { error: 'media not found', code: 'media_not_found', request_id: 'r-9' }))).toEqual({
      error: 'media not found',
      code: 'media_not_found',
      status: 404,
      request_id: 'r-9',
      exit_code: 3,
    });
    expect(errorReport(error(502, {}))).toMatchObject({ code: 'http_502', status: 502, exit_code: 5 });
    expect(errorReport(new APIConnectionError('refused'))).toEqual({ error: 'refused', code: 'connection_error', exit_code: 5 });
  });
});
