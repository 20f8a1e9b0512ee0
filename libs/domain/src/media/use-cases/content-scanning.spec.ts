import { Readable } from 'node:stream';
import type { Principal } from '../../access/principal';
import { codeOf, createUseCaseTestbed, pngBytes, ScriptedContentScanner } from '../../testing';

const alice: Principal = { kind: 'user', subject: 'alice' };

function setup() {
  const scanner = new ScriptedContentScanner('EVIL');
  return { scanner, ...createUseCaseTestbed({ scanner }) };
}

describe('the malware/DLP hook', () => {
  it('stores what the scanner passes, and scans each new image once', async () => {
    const t = setup();
    const { media } = await t.upload(alice, pngBytes('fine'));
    expect(t.scanner.scanned).toEqual([media.sha256]);
    await t.upload(alice, pngBytes('fine'));
    expect(t.scanner.scanned).toHaveLength(1);
  });

  it('refuses what the scanner rejects with content_rejected: no row, no object, the reason in the event only', async () => {
    const t = setup();
    const error = await t.upload(alice, pngBytes('xx EVIL xx')).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'content_rejected', details: undefined });
    expect(t.repository.rows.size).toBe(0);
    expect(t.storage.objects.size).toBe(0);
    expect(t.events.ofType('ingest.rejected')).toEqual([expect.objectContaining({ code: 'content_rejected', reason: 'Test.EVIL' })]);
  });

  it('fails closed with scanner_unavailable when the scanner does not answer, and stores nothing', async () => {
    const t = setup();
    t.scanner.down = true;
    expect(await codeOf(t.upload(alice, pngBytes('fine')))).toBe('scanner_unavailable');
    expect(t.repository.rows.size).toBe(0);
    expect(t.storage.objects.size).toBe(0);
  });

  it('scans direct uploads on complete: a rejection discards the upload, an outage keeps it for a retry', async () => {
    const t = setup();
    const evil = await t.direct.prepare({ principal: alice, mimeType: 'image/png' });
    await t.storage.put(evil.media.storageKey, Readable.from([pngBytes('EVIL')]), { contentType: 'image/png' });
    expect(await codeOf(t.direct.complete(alice, evil.media.id))).toBe('content_rejected');
    expect(t.repository.rows.has(evil.media.id)).toBe(false);
    expect(t.storage.objects.has(evil.media.storageKey)).toBe(false);

    const fine = await t.direct.prepare({ principal: alice, mimeType: 'image/png' });
    await t.storage.put(fine.media.storageKey, Readable.from([pngBytes('fine')]), { contentType: 'image/png' });
    t.scanner.down = true;
    expect(await codeOf(t.direct.complete(alice, fine.media.id))).toBe('scanner_unavailable');
    expect(t.repository.rows.get(fine.media.id)?.status).toBe('pending');
    t.scanner.down = false;
    expect((await t.direct.complete(alice, fine.media.id)).media.status).toBe('ready');
  });
});
