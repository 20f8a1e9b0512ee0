import { randomBytes } from 'node:crypto';
import { keyId } from '../../src/auth/key-ring';
import { startBuiltService, type BuiltService } from '../support/built-service';
import { dataUrl, pngImage, uniqueUser } from '../support/images';
import { SERVICE_KEY } from '../support/test-app';

jest.setTimeout(120_000);

/**
 * The start-up banner names every service and admin key by its id (never the key), so an operator
 * reads the audit actor of an admin's actions off the log instead of computing it.
 */
describe('key ids in the start-up banner', () => {
  const adminA = `banner-admin-a-${randomBytes(16).toString('hex')}`;
  const adminB = `banner-admin-b-${randomBytes(16).toString('hex')}`;
  let service: BuiltService;
  let stdout = '';

  beforeAll(async () => {
    service = await startBuiltService({ MEDIA_ADMIN_KEY: `${adminA},${adminB}`, LOG_LEVEL: 'warn' }, { pipeStdout: true });
    service.child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    for (let i = 0; i < 50 && !stdout.includes('admin key ids:'); i++) await new Promise((r) => setTimeout(r, 100));
  });
  afterAll(async () => {
    await service?.stop();
  });

  it('prints the admin key ids, in the configured order, next to the service key ids; never a key', async () => {
    expect(stdout).toContain(`\n  service key ids: ${keyId(SERVICE_KEY, 'service-key')}\n`);
    expect(stdout).toContain(`\n  admin key ids: ${keyId(adminA, 'admin-key')}, ${keyId(adminB, 'admin-key')}\n`);
    for (const key of [SERVICE_KEY, adminA, adminB]) expect(stdout).not.toContain(key);
  });

  it('prints the id that the audit trail names as the actor of an admin key', async () => {
    const ingested = await fetch(`${service.baseUrl}/v1/media`, {
      method: 'POST',
      headers: { 'x-media-service-key': SERVICE_KEY, 'x-jan-user-id': uniqueUser('banner'), 'content-type': 'application/json' },
      body: JSON.stringify({ source: { type: 'data_url', data_url: dataUrl(await pngImage(Date.now() % 100_000)) } }),
    });
    expect(ingested.status).toBe(200);
    const { id } = (await ingested.json()) as { id: string };
    const reissued = await fetch(`${service.baseUrl}/v1/admin/media/${id}/reissue`, {
      method: 'POST',
      headers: { 'x-media-admin-key': adminB, 'content-type': 'application/json' },
      body: '{}',
    });
    expect(reissued.status).toBe(200);

    const printed = /^ {2}admin key ids: (.*)$/m.exec(stdout)?.[1]?.split(', ');
    let actor: string | undefined;
    for (let i = 0; i < 30 && actor === undefined; i++) {
      const described = await fetch(`${service.baseUrl}/v1/admin/media/${id}`, { headers: { 'x-media-admin-key': adminA } });
      const events = ((await described.json()) as { events: { action: string; actor_kind: string; actor_id: string }[] }).events;
      actor = events.find((e) => e.action === 'media.reissue')?.actor_id;
      if (actor === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    expect(actor).toBeDefined();
    expect(printed?.[1]).toBe(actor);
  });
});
