import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

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

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/**
 * utime + stime of a process in ms (null once it is gone); children are not included. With `tid`,
 * of that one thread: `cpuMsOf(pid, pid)` is the main thread, which runs Node's event loop.
 */
export function cpuMsOf(pid, tid) {
  try {
    const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces), from field 3 on.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  } catch {
    return null;
  }
}

/** CPU ms of every process named `postgres` on this machine (the server and its backends), by pid. */
export function postgresCpuMs() {
  const byPid = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'postgres') continue;
    } catch {
      continue;
    }
    const ms = cpuMsOf(entry);
    if (ms !== null) byPid.set(entry, ms);
  }
  return byPid;
}

/**
 * CPU time spent over a window by the measured process and by PostgreSQL, for "CPU per request":
 * on a shared 2-core machine throughput moves with whatever else runs, while the CPU a request
 * costs moves much less. PostgreSQL's share counts every postgres process on the machine, so it
 * is only meaningful when nothing else uses the server during the run.
 */
export class CpuWindow {
  constructor(pid) {
    this.pid = pid;
    this.app = cpuMsOf(pid);
    this.loop = cpuMsOf(pid, pid);
    this.db = postgresCpuMs();
  }

  /**
   * `appMs` is every thread of the process; `loopMs` the main thread alone (the event loop, where
   * all JavaScript runs; the rest is libuv's pool, libvips and V8's GC and compiler threads).
   */
  stop() {
    const app = cpuMsOf(this.pid);
    const loop = cpuMsOf(this.pid, this.pid);
    // Backends that started during the window count from zero; one that ended is lost, not negative.
    let dbMs = 0;
    for (const [pid, ms] of postgresCpuMs()) dbMs += ms - (this.db.get(pid) ?? 0);
    const since = (now, then) => (now === null || then === null ? null : now - then);
    return { appMs: since(app, this.app), loopMs: since(loop, this.loop), dbMs };
  }
}
