import autocannon from 'autocannon';
import { PeakRss } from './proc.mjs';

function fire(options) {
  return new Promise((resolve, reject) => {
    autocannon({ ...options, pipelining: 1, timeout: 30 }, (error, result) => (error ? reject(error) : resolve(result)));
  });
}

/**
 * A warmup run (discarded), then the measured run at fixed concurrency, with the server's peak RSS
 * over the measured window. `requests` is autocannon's request list (cycled per connection).
 */
export async function drive({ url, requests, connections, durationS, warmupS, pid, around = {} }) {
  const options = { url, connections, requests };
  if (warmupS > 0) await fire({ ...options, duration: warmupS });
  await around.before?.();
  const peak = new PeakRss(pid);
  const result = await fire({ ...options, duration: durationS });
  const peakRssMb = peak.stop();
  await around.after?.();
  const ok = result['2xx'];
  return {
    rps: ok / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    max: result.latency.max,
    requests: result.requests.total,
    ok,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    durationS: result.duration,
    peakRssMb,
  };
}
