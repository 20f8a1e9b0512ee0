import 'reflect-metadata';
import fc from 'fast-check';
import { ValidationPipe } from '@nestjs/common';
import { IngestMediaDto, parseIngestBody } from './ingest-media.dto';

/** Plain data, with absent optional fields (undefined or null: the pipe kept null) left out. */
const plain = (dto: unknown) => JSON.parse(JSON.stringify(dto, (_key, value: unknown) => (value === null ? undefined : value))) as unknown;

/** What the global validation pipe made of a body before the ingest route parsed it by hand. */
async function viaPipe(body: unknown): Promise<unknown> {
  const pipe = new ValidationPipe({ whitelist: true, transform: true });
  return pipe.transform(body, { type: 'body', metatype: IngestMediaDto }).then(
    (dto) => plain(dto),
    () => 'refused',
  );
}

function byHand(body: unknown): unknown {
  try {
    return plain(parseIngestBody(body));
  } catch (error) {
    expect(error).toMatchObject({ code: 'invalid_request' });
    return 'refused';
  }
}

describe('parseIngestBody', () => {
  it('accepts and refuses exactly what the decorators do, and drops unknown properties (property)', async () => {
    const text = (max: number) => fc.oneof(fc.string({ maxLength: 20 }), fc.constant('x'.repeat(max)), fc.constant('x'.repeat(max + 1)));
    const anything = fc.oneof(fc.constant(undefined), fc.constant(null), fc.integer(), fc.boolean(), fc.constant([]), fc.constant({}));
    const field = (max: number) => fc.oneof(text(max), anything);
    const source = fc.oneof(
      anything,
      fc.record({ type: field(10), data_url: field(100), url: field(8192), extra: field(5) }, { requiredKeys: [] }),
    );
    const body = fc.oneof(anything, fc.record({ source, filename: field(1024), user_id: field(200), other: field(3) }, { requiredKeys: [] }));
    await fc.assert(
      fc.asyncProperty(body, async (value) => {
        expect(byHand(value)).toEqual(await viaPipe(value));
      }),
      { numRuns: 500 },
    );
  });

  it('keeps the fields of a valid body', () => {
    expect(parseIngestBody({ source: { type: 'data_url', data_url: 'data:image/png;base64,AA' }, filename: 'a.png', junk: 1 })).toEqual({
      source: { type: 'data_url', data_url: 'data:image/png;base64,AA', url: undefined },
      filename: 'a.png',
      user_id: undefined,
    });
  });
});
