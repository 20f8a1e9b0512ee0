import { newMediaId } from '@jan/mediaid';
import { RetentionSweeper } from '../../src/modules/media/retention-sweeper';
import { SERVICE_KEY, SERVICE_KEY_ID, startTestApp, type TestApp } from '../support/test-app';
import { dataUrl, uniqueUser } from '../support/images';
import { auditRows } from '../support/audit-rows';
import { uniquePng } from '../support/unique-image';

jest.setTimeout(60_000);

const TRACE = '0af7651916cd43dd8448eb211c80319c';

/** Every audited action leaves its row, with request id, trace id and client address, and no secrets. */
describe('audit trail', () => {
  let app: TestApp;
  beforeAll(async () => {
    // The test client stands in for an ingress on loopback, so its X-Forwarded-For is trusted.
    app = await startTestApp({ env: { MEDIA_RATE_LIMIT: '0', MEDIA_TRUST_PROXY: '127.0.0.1' } });
  });
  afterAll(async () => {
    await app?.close();
  });

  let n = 0;
  const call = (path: string, init: RequestInit & { user: string }) => {
    const requestId = `audit-${Date.now()}-${n++}`;
    const headers = { 'x-request-id': requestId, traceparent: `00-${TRACE}-b7ad6b7169203331-01`, 'x-forwarded-for': '198.51.100.23' };
    return app.call(path, { ...init, headers }).then((res) => ({ res, requestId }));
  };
  const rowsFor = (requestId: string) => auditRows(app, 'request_id = $1', [requestId]);

  it('records ingest, rejection, complete, pin, unpin, delete and denied access', async () => {
    const user = uniqueUser('audited');
    const ingest = await call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(await uniquePng()) } }) });
    const { id } = await ingest.res.json() as any;
    const rejected = await call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(Buffer.from('<svg/>'), 'image/svg+xml') } }) });
    expect(rejected.res.status).toBe(415);

    const prepared = await (await app.call('/v1/media/prepare-upload', { method: 'POST', user, body: JSON.stringify({ mime_type: 'image/png' }) })).json() as any;
    await fetch(prepared.upload_url, { method: 'PUT', headers: { 'content-type': 'image/png' }, body: await uniquePng() });
    const complete = await call(`/v1/media/${prepared.id}/complete`, { method: 'POST', user });
    expect(complete.res.status).toBe(200);
    const pin = await call(`/v1/media/${id}/pin`, { method: 'PUT', user });
    const unpin = await call(`/v1/media/${id}/pin`, { method: 'DELETE', user });
    const denied = await call(`/v1/media/${id}`, { user: uniqueUser('intruder') });
    expect(denied.res.status).toBe(404);
    const removed = await call(`/v1/media/${id}`, { method: 'DELETE', user });
    expect(removed.res.status).toBe(204);

    const expectations: [typeof ingest, string, string | null, string, string | null][] = [
      [ingest, 'media.ingest', id, 'success', null],
      [rejected, 'media.ingest', null, 'failure', 'unsupported_media_type'],
      [complete, 'media.complete', prepared.id, 'success', null],
      [pin, 'media.pin', id, 'success', null],
      [unpin, 'media.unpin', id, 'success', null],
      [denied, 'media.read', id, 'denied', 'forbidden'],
      [removed, 'media.delete', id, 'success', null],
    ];
    for (const [call, action, mediaId, outcome, reason] of expectations) {
      const rows = await rowsFor(call.requestId);
      expect(rows).toEqual([
        expect.objectContaining({
          action,
          media_id: mediaId,
          outcome,
          reason_code: reason,
          actor_kind: 'service',
          actor_id: SERVICE_KEY_ID,
          request_id: call.requestId,
          trace_id: TRACE,
          client_ip: '198.51.100.23',
        }),
      ]);
      const text = JSON.stringify(rows);
      expect(text).not.toContain(SERVICE_KEY);
      expect(text).not.toMatch(/https?:\/\//);
      expect(text).not.toContain('images/');
    }
  });

  it('records the user a service acts for on denials and refused uploads, and nothing of the owner it was refused', async () => {
    const owner = uniqueUser('victim');
    const prober = uniqueUser('prober');
    const ingest = await call('/v1/media', { method: 'POST', user: owner, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(await uniquePng()) } }) });
    const { id } = (await ingest.res.json()) as any;

    const attempts = [
      await call(`/v1/media/${id}`, { user: prober }),
      await call(`/v1/media/${id}/presign`, { user: prober }),
      await call(`/v1/media/${id}/pin`, { method: 'PUT', user: prober }),
      await call(`/v1/media/${id}`, { method: 'DELETE', user: prober }),
    ];
    for (const attempt of attempts) {
      expect(attempt.res.status).toBe(404);
      const rows = await rowsFor(attempt.requestId);
      expect(rows).toEqual([expect.objectContaining({ media_id: id, outcome: 'denied', actor_id: SERVICE_KEY_ID, details: { acting_for: prober } })]);
      expect(JSON.stringify(rows)).not.toContain(owner);
    }

    // A refused upload for the prober says whom it was for.
    const refused = await call('/v1/media', { method: 'POST', user: prober, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(Buffer.from('<svg/>'), 'image/svg+xml') } }) });
    expect(refused.res.status).toBe(415);
    expect(await rowsFor(refused.requestId)).toEqual([
      expect.objectContaining({ action: 'media.ingest', outcome: 'failure', reason_code: 'unsupported_media_type', details: { source: 'data_url', acting_for: prober, owner: prober } }),
    ]);
  });

  it('keeps the trail when the object is gone, and refuses to rewrite it', async () => {
    const user = uniqueUser('audited');
    const ingest = await call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(await uniquePng()) } }) });
    const { id } = await ingest.res.json() as any;
    await app.call(`/v1/media/${id}`, { method: 'DELETE', user });
    const rows = await auditRows(app, 'media_id = $1', [id]);
    expect(rows.map((r) => r.action)).toEqual(['media.ingest', 'media.delete']);
    await expect(app.running.database.writer.query(`UPDATE media_api.media_audit_events SET outcome = 'denied' WHERE media_id = $1`, [id])).rejects.toThrow(/append-only/);
  });

  it('ignores X-Forwarded-For from peers that are not trusted proxies (the default)', async () => {
    const untrusting = await startTestApp({ env: { MEDIA_RATE_LIMIT: '0' } });
    try {
      const requestId = `audit-forged-${Date.now()}`;
      const user = uniqueUser('forger');
      const res = await untrusting.call('/v1/media', {
        method: 'POST',
        user,
        headers: { 'x-request-id': requestId, 'x-forwarded-for': '203.0.113.9' },
        body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(await uniquePng()) } }),
      });
      expect(res.status).toBe(200);
      const rows = await auditRows(untrusting, 'request_id = $1', [requestId]);
      expect(rows.length).toBeGreaterThan(0);
      for (const row of rows) expect(row.client_ip).toBe('127.0.0.1');
    } finally {
      await untrusting.close();
    }
  });

  it('prunes entries past MEDIA_AUDIT_RETENTION_DAYS on each retention sweep, and keeps the rest', async () => {
    // Its own database: the sweep deletes every expired object and old entry it finds.
    const pruning = await startTestApp({ env: { MEDIA_RATE_LIMIT: '0', MEDIA_AUDIT_RETENTION_DAYS: '30' }, ownDatabase: true });
    try {
      const user = uniqueUser('audit-retention');
      const ingest = await pruning.call('/v1/media', { method: 'POST', user, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(await uniquePng()) } }) });
      const { id } = (await ingest.json()) as any;
      // Entries written 31 and 29 days ago for another object (the table refuses only updates).
      const old = newMediaId();
      for (const days of [31, 29]) {
        await pruning.running.database.writer.query(
          `INSERT INTO media_api.media_audit_events (occurred_at, actor_kind, actor_id, action, media_id, outcome)
           VALUES (now() - make_interval(days => $1), 'system', $2, 'media.expire', $3, 'success')`,
          [days, `days-${days}`, old],
        );
      }
      await pruning.running.app.get(RetentionSweeper).sweep();

      expect((await auditRows(pruning, 'media_id = $1', [old])).map((r) => r.actor_id)).toEqual(['days-29']);
      expect((await auditRows(pruning, 'media_id = $1', [id])).map((r) => r.action)).toEqual(['media.ingest']);
    } finally {
      await pruning.close();
    }
  });
});
