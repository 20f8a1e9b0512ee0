import { Logger } from '@nestjs/common';
import { PresignCache, type Principal } from '@jan/domain';
import { readyMedia } from '@jan/domain/testing';
import { MediaMetrics } from './media-metrics';
import { ObservedMediaEvents } from './observed-media-events';

const alice: Principal = { kind: 'user', subject: 'alice' };

describe('ObservedMediaEvents', () => {
  afterEach(() => jest.restoreAllMocks());

  function emitSome(logLevel: string) {
    const info = jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const metrics = new MediaMetrics(new PresignCache(1));
    const events = new ObservedMediaEvents(metrics, () => undefined, logLevel);
    events.emit({ type: 'ingest.accepted', principal: alice, source: 'data_url', media: readyMedia('alice'), deduped: false, receivedBytes: 10 });
    events.emit({ type: 'access.denied', principal: alice, action: 'read', mediaIds: ['jan_x'] });
    events.emit({ type: 'ingest.rejected', principal: alice, source: 'data_url', code: 'content_rejected', reason: 'Eicar' });
    return { info, warn, metrics };
  }

  it('writes info and warn lines at LOG_LEVEL=info', async () => {
    const { info, warn } = emitSome('info');
    expect(info).toHaveBeenCalledTimes(1);
    expect(warn).toHaveBeenCalledTimes(2);
    expect(warn).toHaveBeenCalledWith(expect.objectContaining({ event: 'ingest.rejected', scanner_reason: 'Eicar' }));
  });

  it('builds no info line at LOG_LEVEL=warn, none at all at silent, and counts every event either way', async () => {
    const quiet = emitSome('warn');
    expect(quiet.info).not.toHaveBeenCalled();
    expect(quiet.warn).toHaveBeenCalledTimes(2);
    expect(await quiet.metrics.registry.getSingleMetricAsString('media_ingest_total')).toContain('media_ingest_total{source="data_url",deduped="false"} 1');
    jest.restoreAllMocks();
    const silent = emitSome('silent');
    expect(silent.info).not.toHaveBeenCalled();
    expect(silent.warn).not.toHaveBeenCalled();
  });
});
