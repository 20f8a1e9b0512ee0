import { NoopMediaEvents, type MediaObject, type Principal } from '@jan/domain';
import { InMemoryAuditTrail, readyMedia } from '@jan/domain/testing';
import { auditEntriesFor } from './audit-mapping';
import { AuditedMediaEvents } from './audited-media-events';
import { RequestContextStore, traceIdOf } from './request-context';

const alice: Principal = { kind: 'user', subject: 'alice' };
const ops: Principal = { kind: 'admin', adminId: 'ops', actingFor: null };

function media(): MediaObject {
  return readyMedia('alice', { storageProvider: 's3', filename: 'secret-name.png' });
}

describe('audit mapping', () => {
  it('names the action and outcome of every audited event, and never a key, filename or URL', () => {
    const m = media();
    const entries = [
      ...auditEntriesFor({ type: 'ingest.accepted', principal: alice, source: 'data_url', media: m, deduped: false, receivedBytes: 10 }),
      ...auditEntriesFor({ type: 'ingest.accepted', principal: alice, source: 'direct_upload', media: m, deduped: true, receivedBytes: 10 }),
      ...auditEntriesFor({ type: 'ingest.rejected', principal: alice, source: 'multipart', code: 'quota_exceeded' }),
      ...auditEntriesFor({ type: 'ingest.rejected', principal: alice, source: 'direct_upload', code: 'checksum_mismatch', mediaId: m.id }),
      ...auditEntriesFor({ type: 'ingest.rejected', principal: alice, source: 'direct_upload', code: 'quota_exceeded' }),
      ...auditEntriesFor({ type: 'media.deleted', principal: alice, media: m, reason: 'request' }),
      ...auditEntriesFor({ type: 'media.deleted', principal: ops, media: m, reason: 'purge' }),
      ...auditEntriesFor({ type: 'media.deleted', principal: null, media: m, reason: 'retention' }),
      ...auditEntriesFor({ type: 'media.delete_failed', principal: null, media: m, reason: 'retention', code: 'storage_unavailable' }),
      ...auditEntriesFor({ type: 'media.delete_failed', principal: ops, media: m, reason: 'purge', code: 'storage_unavailable' }),
      ...auditEntriesFor({ type: 'media.pinned', principal: alice, media: m, pinned: true }),
      ...auditEntriesFor({ type: 'media.pinned', principal: alice, media: m, pinned: false }),
      ...auditEntriesFor({ type: 'media.reissued', principal: ops, media: m, ttlSeconds: 60 }),
      ...auditEntriesFor({ type: 'access.denied', principal: alice, action: 'presign', mediaIds: [m.id, 'jan_other'] }),
      ...auditEntriesFor({ type: 'ingest.mime_mismatch', principal: alice, source: 'data_url', declared: 'image/gif', sniffed: 'image/png' }),
    ];
    expect(entries.map((e) => [e.actorKind, e.action, e.outcome, e.reasonCode ?? null])).toEqual([
      ['user', 'media.ingest', 'success', null],
      ['user', 'media.complete', 'success', null],
      ['user', 'media.ingest', 'denied', 'quota_exceeded'],
      ['user', 'media.complete', 'failure', 'checksum_mismatch'],
      ['user', 'media.prepare', 'denied', 'quota_exceeded'],
      ['user', 'media.delete', 'success', null],
      ['admin', 'media.purge', 'success', null],
      ['system', 'media.expire', 'success', null],
      ['system', 'media.expire', 'failure', 'storage_unavailable'],
      ['admin', 'media.purge', 'failure', 'storage_unavailable'],
      ['user', 'media.pin', 'success', null],
      ['user', 'media.unpin', 'success', null],
      ['admin', 'media.reissue', 'success', null],
      ['user', 'media.presign', 'denied', 'forbidden'],
      ['user', 'media.presign', 'denied', 'forbidden'],
    ]);
    const text = JSON.stringify(entries);
    expect(text).not.toContain(m.storageKey);
    expect(text).not.toContain('secret-name');
  });

  it("records the user a service acts for on denials and refused uploads, and nothing of the refused object's owner", () => {
    const m = media();
    const forBob: Principal = { kind: 'service', serviceId: 'service-key-1', actingFor: 'bob' };
    const denied = auditEntriesFor({ type: 'access.denied', principal: forBob, action: 'read', mediaIds: [m.id] });
    expect(denied).toEqual([expect.objectContaining({ actorKind: 'service', actorId: 'service-key-1', outcome: 'denied', details: { acting_for: 'bob' } })]);
    expect(JSON.stringify(denied)).not.toContain('alice');
    const refused = auditEntriesFor({ type: 'ingest.rejected', principal: forBob, source: 'multipart', code: 'quota_exceeded', owner: 'bob' });
    expect(refused).toEqual([expect.objectContaining({ outcome: 'denied', reasonCode: 'quota_exceeded', details: { source: 'multipart', acting_for: 'bob', owner: 'bob' } })]);
    // A service naming its user only in the body: the owner says whom the upload was for.
    const viaBody = auditEntriesFor({ type: 'ingest.rejected', principal: { ...forBob, actingFor: null }, source: 'data_url', code: 'quota_exceeded', owner: 'carol' });
    expect(viaBody[0]!.details).toEqual({ source: 'data_url', owner: 'carol' });
    // A service acting for nobody, and users, add nothing.
    expect(auditEntriesFor({ type: 'access.denied', principal: { ...forBob, actingFor: null }, action: 'read', mediaIds: [m.id] })[0]!.details).toBeUndefined();
    expect(auditEntriesFor({ type: 'access.denied', principal: alice, action: 'read', mediaIds: [m.id] })[0]!.details).toBeUndefined();
  });

  it('adds the request context, and survives a failing store', async () => {
    const trail = new InMemoryAuditTrail();
    const context = new RequestContextStore();
    const events = new AuditedMediaEvents(new NoopMediaEvents(), trail, context);
    const requester: Principal = { ...alice };
    context.bind(requester, { requestId: 'req-1', clientIp: '203.0.113.9', traceId: '0af7651916cd43dd8448eb211c80319c' });
    events.emit({ type: 'media.pinned', principal: requester, media: media(), pinned: true });
    // Another request's principal (or none bound, as for the retention sweeper) gets no request fields.
    events.emit({ type: 'media.pinned', principal: alice, media: media(), pinned: false });
    await events.flush();
    expect(trail.entries).toEqual([
      expect.objectContaining({ requestId: 'req-1', clientIp: '203.0.113.9', traceId: '0af7651916cd43dd8448eb211c80319c' }),
      expect.objectContaining({ requestId: null, clientIp: null, traceId: null }),
    ]);

    trail.append = () => Promise.reject(new Error('database down'));
    expect(() => events.emit({ type: 'media.pinned', principal: alice, media: media(), pinned: false })).not.toThrow();
    await expect(events.flush()).resolves.toBeUndefined();
  });

  it('reads trace ids from W3C traceparent only', () => {
    expect(traceIdOf('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01')).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(traceIdOf('00-00000000000000000000000000000000-b7ad6b7169203331-01')).toBeNull();
    expect(traceIdOf('garbage')).toBeNull();
    expect(traceIdOf(undefined)).toBeNull();
    // What OpenTelemetry's propagator refuses is refused here too, so logs name the spans' trace.
    expect(traceIdOf('ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01')).toBeNull();
    expect(traceIdOf('00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01')).toBeNull();
    expect(traceIdOf('00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01')).toBeNull();
    expect(traceIdOf('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra')).toBeNull();
    expect(traceIdOf('01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-future')).toBe('0af7651916cd43dd8448eb211c80319c');
  });
});
