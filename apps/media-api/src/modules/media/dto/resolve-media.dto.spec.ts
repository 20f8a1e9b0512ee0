import { RawJsonBody } from '../../../http/raw-json-body';
import { parseResolveFields, readResolveBody } from './resolve-media.dto';

describe('parseResolveFields', () => {
  it('reads the ids form and the options', () => {
    expect(parseResolveFields({ ids: ['jan_x'], keep_unresolved: true })).toEqual({ ids: ['jan_x'], mode: undefined, keep_unresolved: true });
    expect(parseResolveFields({ mode: 'inline' })).toEqual({ ids: undefined, mode: 'inline', keep_unresolved: undefined });
  });
  it.each([[{ ids: 'jan_x' }], [{ ids: [1] }], [{ mode: 'data' }], [{ keep_unresolved: 'yes' }], [{ ids: Array(1001).fill('a') }]])(
    'refuses %j with invalid_request',
    (fields) => {
      expect(() => parseResolveFields(fields)).toThrow(expect.objectContaining({ code: 'invalid_request' }));
    },
  );
});

describe('readResolveBody', () => {
  const raw = (text: string) => new RawJsonBody(Buffer.from(text));

  it('parses the small fields and only scans the payload', () => {
    const id = 'jan_01hqr8v9k2x3f4g5h6j7k8m9n0';
    const { dto, payload } = readResolveBody(raw(`{"mode":"url","keep_unresolved":true,"payload":{"u":"data:image/png;${id}"}}`));
    expect(dto).toEqual({ ids: undefined, mode: 'url', keep_unresolved: true });
    expect(payload?.ids).toEqual([id]);
    expect(Buffer.concat(payload!.replace(() => 'U')).toString()).toBe('{"u":"U"}');
  });

  it('parses only the fields it knows; other members are ignored, not parsed', () => {
    const { dto, payload } = readResolveBody(raw('{"extra": {"big": [1, 2, 3]}, "payload": {"a": 1}}'));
    expect(dto).toEqual({ ids: undefined, mode: undefined, keep_unresolved: undefined });
    expect(Buffer.concat(payload!.replace(() => 'U')).toString()).toBe('{"a": 1}');
  });

  it('tells the ids form and a missing payload apart', () => {
    expect(readResolveBody(raw('{"ids":["jan_x"]}'))).toMatchObject({ dto: { ids: ['jan_x'] }, payload: null });
    expect(readResolveBody(raw('{"payload":null}')).payload?.ids).toEqual([]);
  });

  it('refuses both forms at once, whatever the payload', () => {
    expect(() => readResolveBody(raw('{"ids":["jan_x"],"payload":null}'))).toThrow(expect.objectContaining({ code: 'invalid_request' }));
  });

  it.each([['not raw', { payload: {} }], ['array', raw('[]')], ['both ids and payload', raw('{"ids":[],"payload":{}}')], ['bad mode', raw('{"mode":"x","payload":1}')], ['bad JSON', raw('{"payload":}')]])(
    'refuses a body that is %s with invalid_request',
    (_what, body) => {
      expect(() => readResolveBody(body)).toThrow(expect.objectContaining({ code: 'invalid_request' }));
    },
  );
});
