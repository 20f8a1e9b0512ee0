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
    // Look-alikes are still not placeholders at all.
    findPlaceholders(`data:image/png;jan_${'0'.repeat(25)} data:text/plain;jan_${'z'.repeat(26)} data:image/png;jan_${'z'.repeat(27)}`, malformed);
    expect(malformed).toHaveLength(2);
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
