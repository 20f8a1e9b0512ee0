import { CutoverViolationError, findCutoverViolations, validateCutover } from './cutover';
import { MediaClientError } from '../errors';

const ID = 'jan_01hqr8v9k2x3f4g5h6j7k8m9n0';
const B64 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==';

const body = {
  model: 'gpt-4o',
  messages: [
    { role: 'system', content: 'be brief' },
    {
      role: 'user',
      content: [
        { type: 'text', text: 'two placeholders are fine' },
        { type: 'image_url', image_url: { url: `data:image/png;${ID}` } },
        { type: 'image_url', image_url: { url: `data:image/jpeg;base64,${ID.toUpperCase()}` } },
      ],
    },
    {
      role: 'user',
      content: [
        { type: 'text', text: 'look' },
        { type: 'image_url', image_url: { url: `data:image/png;base64,${B64}` } },
        { type: 'image_url', image_url: { url: 'https://cdn.example.com/cat.png?X-Amz-Signature=secret' } },
        { type: 'image_url', image_url: 'http://example.com/legacy-string-form.png' },
      ],
    },
    { role: 'user', content: [{ type: 'input_image', image_url: 'jan_01hqr8v9k2x3f4g5h6j7k8m9n0' }] },
    {
      role: 'user',
      content: [
        { type: 'image', source: { type: 'base64', media_type: 'image/png', data: B64 } },
        { type: 'image', source: { type: 'url', url: 'https://example.com/a.png' } },
        { type: 'text', text: `inline in text: data:image/gif;base64,${B64}` },
      ],
    },
  ],
  metadata: { 'odd key': `data:image/webp;base64,${B64}`, note: 'https://example.com/not-an-image-position' },
};

describe('findCutoverViolations', () => {
  it('lists every raw or non-jan image with its JSON path and kind', () => {
    expect(findCutoverViolations(body).map(({ path, kind }) => ({ path, kind }))).toEqual([
      { path: 'messages[2].content[1].image_url.url', kind: 'raw_base64' },
      { path: 'messages[2].content[2].image_url.url', kind: 'external_url' },
      { path: 'messages[2].content[3].image_url', kind: 'external_url' },
      { path: 'messages[3].content[0].image_url', kind: 'unrecognised' },
      { path: 'messages[4].content[0].source.data', kind: 'raw_base64' },
      { path: 'messages[4].content[1].source.url', kind: 'external_url' },
      { path: 'messages[4].content[2].text', kind: 'raw_base64' },
      { path: 'metadata["odd key"]', kind: 'raw_base64' },
    ]);
  });

  it('keeps previews short and free of signatures', () => {
    const previews = findCutoverViolations(body).map((v) => v.preview);
    expect(previews[0]).toBe(`data:image/png;base64,… (${`data:image/png;base64,${B64}`.length} chars)`);
    expect(previews[1]).toBe('https://cdn.example.com/cat.png?…');
    expect(previews.join(' ')).not.toContain('secret');
    // Not even the first bytes of an image: a PNG's begin with the same 12 base64 characters.
    expect(previews.join(' ')).not.toContain(B64.slice(0, 12));
    expect(previews[4]).toBe(`base64 data (${B64.length} chars)`);
    expect(previews[6]).toBe(`text with an inline data:image/gif;base64,… (${`inline in text: data:image/gif;base64,${B64}`.length} chars)`);
    expect(previews[3]).toBe('jan_01hqr8v9k2x3f4g5h6j7k8m9n0');
  });

  it('finds nothing in a fully migrated body, and handles odd inputs', () => {
    const migrated = { messages: [body.messages[0], body.messages[1]] };
    expect(findCutoverViolations(migrated)).toEqual([]);
    expect(findCutoverViolations(null)).toEqual([]);
    expect(findCutoverViolations('plain string')).toEqual([]);
    expect(findCutoverViolations(`data:image/png;base64,${B64}`)).toEqual([
      expect.objectContaining({ path: '$', kind: 'raw_base64' }),
    ]);
  });

  it('survives cyclic objects', () => {
    const cyclic: Record<string, unknown> = { image_url: 'https://example.com/x.png' };
    cyclic['self'] = cyclic;
    expect(findCutoverViolations(cyclic)).toHaveLength(1);
  });
});

describe('validateCutover', () => {
  it('returns the body when it passes', () => {
    const ok = { messages: [body.messages[1]] };
    expect(validateCutover(ok)).toBe(ok);
  });

  it('throws a CutoverViolationError naming every path', () => {
    let error: unknown;
    try {
      validateCutover(body);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CutoverViolationError);
    expect(error).toBeInstanceOf(MediaClientError);
    const violation = error as CutoverViolationError;
    expect(violation.code).toBe('cutover_violation');
    expect(violation.violations).toHaveLength(8);
    expect(violation.message).toContain('8 images that are not a jan_ media reference');
    expect(violation.message).toContain('messages[2].content[1].image_url.url (raw base64 image)');
    expect(violation.message).toContain('messages[2].content[2].image_url.url (non-jan image URL)');
  });
});

describe('findCutoverViolations on Gemini-native bodies', () => {
  it('reports image inline_data (both spellings) holding bytes, not placeholders, PDFs or other parts', () => {
    const gemini = {
      systemInstruction: { parts: [{ text: 'be brief' }] },
      contents: [
        {
          role: 'user',
          parts: [
            { text: 'compare' },
            { inline_data: { mime_type: 'image/png', data: B64 } },
            { inlineData: { mimeType: 'image/jpeg', data: B64 } },
            { inline_data: { mime_type: 'image/png', data: `data:image/png;${ID}` } },
            { inlineData: { mimeType: 'image/png', data: `data:image/png;base64,${ID}` } },
            { inline_data: { mime_type: 'application/pdf', data: B64 } },
            { inline_data: { mime_type: 'image/webp', data: 'https://example.com/x.webp' } },
            { file_data: { mime_type: 'image/png', file_uri: 'gs://bucket/x.png' } },
          ],
        },
      ],
    };
    expect(findCutoverViolations(gemini).map(({ path, kind, preview }) => [path, kind, preview])).toEqual([
      ['contents[0].parts[1].inline_data.data', 'raw_base64', `base64 data (${B64.length} chars)`],
      ['contents[0].parts[2].inlineData.data', 'raw_base64', `base64 data (${B64.length} chars)`],
      ['contents[0].parts[6].inline_data.data', 'external_url', 'https://example.com/x.webp'],
    ]);
  });

  it('passes file_data parts: a placeholder in file_uri, and the provider\'s own file URIs; a data: URL there is still raw bytes', () => {
    const gemini = {
      contents: [
        {
          role: 'user',
          parts: [
            { file_data: { mime_type: 'image/png', file_uri: `data:image/png;${ID}` } },
            { fileData: { mimeType: 'image/png', fileUri: `data:image/png;base64,${ID}` } },
            { file_data: { mime_type: 'image/png', file_uri: 'https://generativelanguage.googleapis.com/v1beta/files/abc' } },
            { fileData: { mimeType: 'image/jpeg', fileUri: 'https://example.com/cat.jpg' } },
            { file_data: { mime_type: 'image/png', file_uri: `data:image/png;base64,${B64}` } },
          ],
        },
      ],
    };
    expect(findCutoverViolations(gemini).map(({ path, kind }) => [path, kind])).toEqual([['contents[0].parts[4].file_data.file_uri', 'raw_base64']]);
  });
});
