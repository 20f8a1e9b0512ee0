import { newMediaId } from '@jan/mediaid';
import { attachment } from './presign-media';

describe('attachment', () => {
  const id = newMediaId();
  const storageKey = `images/${id}.png`;
  // RFC 8187 ext-value: charset '' then attr-chars and %XX only.
  const EXT_VALUE = /^UTF-8''(?:[A-Za-z0-9!#$&+.^_`|~-]|%[0-9A-F]{2})*$/;

  it.each(["it's (1)*.png", 'naïve ☃.png', 'a;b=c 100%.png', 'plain.png'])('writes filename* for %j as a valid ext-value that decodes back', (filename) => {
    const header = attachment({ id, storageKey, filename });
    const extended = /; filename\*=(\S+)$/.exec(header)?.[1] ?? '';
    expect(extended).toMatch(EXT_VALUE);
    expect(decodeURIComponent(extended.slice("UTF-8''".length))).toBe(filename);
  });

  it('names an object without a filename by its id', () => {
    expect(attachment({ id, storageKey, filename: null })).toBe(`attachment; filename="${id}.png"; filename*=UTF-8''${id}.png`);
  });
});
