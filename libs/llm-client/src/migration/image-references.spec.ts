import { containsPlaceholder, parsePlaceholder, placeholderIdsIn, RAW_BASE64_IMAGE } from './image-references';

const ID = 'jan_01hqr8v9k2x3f4g5h6j7k8m9n0';

// The SDK reads placeholders with the service's grammar (docs/api.md, "Placeholders"): padding
// belongs to the placeholder, and a malformed id is still a placeholder, which the service answers
// as not found; so the SDK never sends one on to a provider as if it were an image.
describe('placeholders as the service reads them', () => {
  it('takes one or two = of base64 padding as part of a whole placeholder', () => {
    expect(parsePlaceholder(`data:image/png;base64,${ID}=`)).toEqual({ mime: 'image/png', id: ID });
    expect(parsePlaceholder(`DATA:IMAGE/WEBP;BASE64,${ID.toUpperCase()}==`)).toEqual({ mime: 'image/webp', id: ID });
  });

  it('takes any longer run of = as part of the placeholder too, which it makes malformed: its id is written with the padding, as the service reports it', () => {
    // The service's pattern is `jan_[0-9a-z]*(=*)`: three `=` or more make a malformed placeholder
    // (404 media_not_found, or listed under keep_unresolved as `jan_<id>===`), never text around one.
    expect(parsePlaceholder(`data:image/png;${ID}===`)).toEqual({ mime: 'image/png', id: `${ID}===` });
    expect(parsePlaceholder(` data:image/png;base64,${ID.toUpperCase()}===== `)).toEqual({ mime: 'image/png', id: `${ID}=====` });
    expect(placeholderIdsIn(`a data:image/png;${ID}=== b data:image/gif;${ID}== c`)).toEqual([`${ID}===`, ID]);
    // Something after the padding is still a longer string around the placeholder.
    expect(parsePlaceholder(`data:image/png;${ID}===x`)).toBeNull();
  });

  it('finds placeholders with malformed ids, so that resolve reports them instead of the provider receiving them', () => {
    expect(containsPlaceholder({ url: 'data:image/png;jan_abc' })).toBe(true);
    expect(parsePlaceholder('data:image/png;base64,jan_abc')).toEqual({ mime: 'image/png', id: 'jan_abc' });
    expect(placeholderIdsIn(`see data:image/png;jan_short and data:image/gif;base64,${ID}= here`)).toEqual(['jan_short', ID]);
  });

  it('finds a placeholder with nothing after jan_, which the service reports as malformed (its placeholders spec)', () => {
    // The service's grammar is `jan_[0-9a-z]*`: `data:image/x-icon;jan_` is a placeholder whose id `jan_`
    // is malformed (404, or listed under keep_unresolved). The SDK must not send it on to a provider.
    expect(containsPlaceholder({ url: 'data:image/x-icon;jan_' })).toBe(true);
    expect(containsPlaceholder(['data:image/png;base64,JAN_=='])).toBe(true);
    expect(parsePlaceholder('data:image/png;base64,jan_=')).toEqual({ mime: 'image/png', id: 'jan_' });
    expect(placeholderIdsIn('a data:image/a;jan_ b')).toEqual(['jan_']);
  });

  it('leaves ordinary text and real data URLs alone', () => {
    expect(containsPlaceholder({ text: 'data:image/png is a format; jan_ is a prefix', svg: 'data:image/svg+xml;charset=utf-8,<svg/>' })).toBe(false);
    expect(containsPlaceholder({ note: 'data:text/plain;jan_01hqr8v9k2x3f4g5h6j7k8m9n0' })).toBe(false);
    expect(RAW_BASE64_IMAGE.test('data:image/png;base64,iVBORw0KGgo=')).toBe(true);
    expect(RAW_BASE64_IMAGE.test('data:image/png;base64,jan_abc')).toBe(false);
    expect(RAW_BASE64_IMAGE.test(`data:image/png;base64,${ID}`)).toBe(false);
  });
});
