import { parseResolveBody } from './resolve-media.dto';

describe('parseResolveBody', () => {
  it('passes the payload through untouched (same reference, no copy)', () => {
    const payload = { messages: [{ content: 'x' }] };
    expect(parseResolveBody({ payload, mode: 'url' }).payload).toBe(payload);
  });
  it('keeps an explicit null payload and the ids form', () => {
    expect(parseResolveBody({ payload: null })).toHaveProperty('payload', null);
    expect(parseResolveBody({ ids: ['jan_x'], keep_unresolved: true })).toMatchObject({ ids: ['jan_x'], keep_unresolved: true });
  });
  it.each([[null], [[1]], ['x'], [{ ids: 'jan_x' }], [{ mode: 'data' }], [{ keep_unresolved: 'yes' }], [{ ids: Array(1001).fill('a') }]])(
    'refuses %j with invalid_request',
    (body) => {
      expect(() => parseResolveBody(body)).toThrow(expect.objectContaining({ code: 'invalid_request' }));
    },
  );
});
