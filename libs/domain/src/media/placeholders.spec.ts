import { createMediaIdFactory } from '@jan/mediaid';
import { findPlaceholders, substitutePlaceholders } from './placeholders';

const nextId = createMediaIdFactory();
const ids = (text: string) => findPlaceholders(text).map((o) => o.id);

describe('placeholders in a string', () => {
  it('finds both forms, any case of id, and ignores look-alikes', () => {
    const [a, b] = [nextId(), nextId()];
    expect(ids(`data:image/png;${a}`)).toEqual([a]);
    expect(ids(`data:image/webp;base64,${b.toUpperCase()}`)).toEqual([b]);
    expect(ids(`DATA:IMAGE/PNG;${a.toUpperCase()}`)).toEqual([a]);
    expect(ids(`data:image/png;${a}x`)).toEqual([]);
    expect(ids(`data:text/plain;${a}`)).toEqual([]);
    expect(ids(`data:image/png;base64,iVBOR${a}`)).toEqual([]);
    expect(ids(`data:image/png;jan_${'0'.repeat(25)}`)).toEqual([]);
  });

  it('reports placeholder-shaped ids that are no media id, as written, instead of taking them', () => {
    const a = nextId();
    const malformed: string[] = [];
    const text = `data:image/png;jan_8zzzzzzzzzzzzzzzzzzzzzzzzz, data:image/png;${a}, data:image/gif;base64,JAN_01M8G7APBPX4CHG24V4EQKVILO`;
    expect(findPlaceholders(text, malformed).map((o) => o.id)).toEqual([a]);
    expect(malformed).toEqual(['jan_8zzzzzzzzzzzzzzzzzzzzzzzzz', 'JAN_01M8G7APBPX4CHG24V4EQKVILO']);
  });

  it('reports an id of the wrong length or with other characters as malformed: the grammar, not the id, makes a placeholder', () => {
    const a = nextId();
    const malformed: string[] = [];
    const text = [
      'data:image/png;jan_abc',
      'DATA:IMAGE/WEBP;BASE64,JAN_ABC==',
      `data:image/png;jan_${'0'.repeat(25)}.`,
      `data:image/png;${a}x`,
      'data:image/svg+xml;base64,jan_-01hqr8v9k2',
      `data:image/x-icon;jan_`,
    ].join(' ');
    expect(findPlaceholders(text, malformed)).toEqual([]);
    expect(malformed).toEqual(['jan_abc', 'JAN_ABC', `jan_${'0'.repeat(25)}`, `${a}x`, 'jan_', 'jan_']);
    // Short strings are looked at too: the shortest placeholder-shaped text has 17 characters.
    expect(findPlaceholders('data:image/a;jan_', (malformed.length = 0, malformed))).toEqual([]);
    expect(malformed).toEqual(['jan_']);
  });

  it('leaves ordinary text that merely mentions data:image/ alone', () => {
    const malformed: string[] = [];
    const text = [
      'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
      'data:image/svg+xml;charset=utf-8,%3Csvg%3E jan_01hqr8v9k2x3f4g5h6j7k8m9n0',
      'data:image/png;name=jan_photo.png',
      'data:image/;jan_abc data:text/plain;jan_abc data:image/png jan_abc',
      'a data:image/ URL, see jan_ ids',
    ].join('\n');
    expect(findPlaceholders(text, malformed)).toEqual([]);
    expect(malformed).toEqual([]);
  });

  it('takes base64 padding written after the id as part of the placeholder, in both forms', () => {
    const a = nextId();
    const malformed: string[] = [];
    const forms = [`data:image/png;base64,${a}=`, `data:image/png;base64,${a}==`, `data:image/png;${a}=`, `DATA:IMAGE/PNG;BASE64,${a.toUpperCase()}==`];
    for (const form of forms) {
      const text = `[${form}]`;
      const found = findPlaceholders(text, malformed);
      expect(found).toEqual([{ start: 1, end: 1 + form.length, id: a }]);
      expect(substitutePlaceholders(text, found, () => 'https://u/x')).toBe('[https://u/x]');
    }
    // More than two `=` is no base64 padding: the placeholder is malformed, listed with them.
    expect(findPlaceholders(`data:image/png;base64,${a}===`, malformed)).toEqual([]);
    expect(malformed).toEqual([`${a}===`]);
  });

  it('reports where each one sits, in order', () => {
    const [a, b] = [nextId(), nextId()];
    const text = `see data:image/png;${a} and data:image/jpeg;base64,${b}!`;
    const found = findPlaceholders(text);
    expect(found.map((o) => text.slice(o.start, o.end))).toEqual([`data:image/png;${a}`, `data:image/jpeg;base64,${b}`]);
  });

  it('replaces the ids it is given a URL for and leaves the others as they are', () => {
    const [a, b, c] = [nextId(), nextId(), nextId()];
    const text = `see data:image/png;${a} and data:image/jpeg;base64,${b}, then data:image/png;${c}!`;
    const out = substitutePlaceholders(text, findPlaceholders(text), (id) => (id === c ? undefined : `https://u/${id.slice(-4)}`));
    expect(out).toBe(`see https://u/${a.slice(-4)} and https://u/${b.slice(-4)}, then data:image/png;${c}!`);
    expect(substitutePlaceholders(text, findPlaceholders(text), () => undefined)).toBe(text);
  });
});
