import { randomBytes } from 'node:crypto';
import { keyId } from '../../src/auth/key-ring';
import { startTestApp, type TestApp } from '../support/test-app';
import { dataUrl } from '../support/images';
import { uniquePng } from '../support/unique-image';
import { auditRows } from '../support/audit-rows';

jest.setTimeout(120_000);

/**
 * `MEDIA_SERVICE_KEY` lists several keys during a rotation. Each key's id (the audit actor, and the
 * owner `service:<id>` of what it uploads for nobody) comes from the key itself: reordering the
 * list or dropping another key must not rename it or hand its objects to another key.
 */
describe('service key ids across a rotation', () => {
  const a = `rotation-a-${randomBytes(16).toString('hex')}`;
  const b = `rotation-b-${randomBytes(16).toString('hex')}`;
  let app: TestApp | undefined;

  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  const start = async (keys: string[]) => (app = await startTestApp({ env: { MEDIA_SERVICE_KEY: keys.join(','), MEDIA_RATE_LIMIT: '0' } }));
  const upload = async (key: string, png: Buffer) => {
    const res = await app!.call('/v1/media', { method: 'POST', key, body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(png) } }) });
    expect(res.status).toBe(200);
    return (await res.json()) as { id: string; deduped: boolean };
  };
  const usage = async (key: string) => (await (await app!.call('/v1/usage', { key })).json()) as { owner: string; objects: number };

  it('keeps each key its id, its objects and its audit actor when the list is reordered or another key removed', async () => {
    const png = await uniquePng();
    const idA = keyId(a, 'service-key');
    const idB = keyId(b, 'service-key');
    expect(idA).not.toBe(idB);
    for (const id of [idA, idB]) {
      expect(id).toMatch(/^service-key-[0-9a-f]{12}$/);
      expect(a + b).not.toContain(id.slice('service-key-'.length));
    }

    // Before the rotation: A first. Each key uploads the same bytes for nobody: two owners, two objects.
    await start([a, b]);
    const ofA = await upload(a, png);
    const ofB = await upload(b, png);
    expect(ofA.deduped).toBe(false);
    expect(ofB.deduped).toBe(false);
    expect(ofB.id).not.toBe(ofA.id);
    expect(await usage(a)).toMatchObject({ owner: `service:${idA}`, objects: 1 });
    expect(await usage(b)).toMatchObject({ owner: `service:${idB}`, objects: 1 });
    expect(await app!.running.database.writer.query('SELECT created_by FROM media_api.media_objects WHERE id = $1', [ofA.id])).toEqual([{ created_by: `service:${idA}` }]);
    await app!.close();

    // The rotation: B first now. A keeps its id, so its upload dedupes into its own object, not into B's.
    await start([b, a]);
    expect(await upload(a, png)).toEqual(expect.objectContaining({ id: ofA.id, deduped: true }));
    expect(await upload(b, png)).toEqual(expect.objectContaining({ id: ofB.id, deduped: true }));
    expect(await usage(a)).toMatchObject({ owner: `service:${idA}`, objects: 1 });
    await app!.close();

    // B removed: A is unchanged still.
    await start([a]);
    expect(await upload(a, png)).toEqual(expect.objectContaining({ id: ofA.id, deduped: true }));
    expect(await usage(a)).toMatchObject({ owner: `service:${idA}`, objects: 1 });
    const unknown = await app!.call('/v1/usage', { key: b });
    expect(unknown.status).toBe(401);

    // Every ingest of A's object, in all three configurations, has the one actor; none is B's or positional.
    const rows = await auditRows(app!, "media_id = $1 AND action = 'media.ingest'", [ofA.id]);
    expect(rows).toHaveLength(3);
    for (const row of rows) expect(row).toMatchObject({ actor_kind: 'service', actor_id: idA });
  });
});
