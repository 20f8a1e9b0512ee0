import autocannon from 'autocannon';
import { CpuWindow, PeakRss } from './proc.mjs';

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
  const cpu = new CpuWindow(pid);
  const result = await fire({ ...options, duration: durationS });
  const { appMs, loopMs, dbMs } = cpu.stop();
  const peakRssMb = peak.stop();
  await around.after?.();
  const ok = result['2xx'];
  const perRequestUs = (ms) => (ms === null || result.requests.total === 0 ? null : (ms * 1000) / result.requests.total);
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
    // CPU per request (µs): the server process, and every postgres process on the machine.
    cpuUs: perRequestUs(appMs),
    // Of which the main thread (the event loop): the one thread no amount of cores can widen.
    loopCpuUs: perRequestUs(loopMs),
    dbCpuUs: perRequestUs(dbMs),
  };
}
