import { readFileSync, writeFileSync } from 'node:fs';

const MIB = 1024 * 1024;

/** VmRSS / VmHWM of a process in MiB (null once it is gone). */
export function memoryOf(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rssMb: (kib('VmRSS') * 1024) / MIB, hwmMb: (kib('VmHWM') * 1024) / MIB };
  } catch {
    return null;
  }
}

/**
 * Peak RSS over a window. Linux resets VmHWM when "5" is written to clear_refs, which catches
 * spikes between samples; periodic VmRSS samples are the fallback where that is not allowed.
 */
export class PeakRss {
  constructor(pid, intervalMs = 50) {
    this.pid = pid;
    this.samplePeak = 0;
    this.hwmReset = false;
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, '5');
      this.hwmReset = true;
    } catch {
      // Not permitted (another user's process, or an old kernel): rely on sampling.
    }
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  sample() {
    const m = memoryOf(this.pid);
    if (m && m.rssMb > this.samplePeak) this.samplePeak = m.rssMb;
  }

  stop() {
    clearInterval(this.timer);
    this.sample();
    const m = memoryOf(this.pid);
    const hwm = this.hwmReset && m ? m.hwmMb : 0;
    return Math.max(this.samplePeak, hwm);
  }
}
