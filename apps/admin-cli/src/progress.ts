import { Presets, SingleBar } from 'cli-progress';
import type { OutputStream } from './io';

/** Progress of bulk work; a no-op when nobody is watching a terminal. */
export interface Progress {
  start(total: number): void;
  setTotal(total: number): void;
  increment(by: number): void;
  stop(): void;
}

const silent: Progress = { start() {}, setTotal() {}, increment() {}, stop() {} };

/**
 * A cli-progress bar on `stream` (stderr) when it is a TTY and output is meant for humans;
 * otherwise nothing, so pipes, logs and `--json` consumers never see bar redraws.
 */
export function createProgress(stream: OutputStream, options: { enabled: boolean; label: string }): Progress {
  if (!options.enabled || !stream.isTTY) return silent;
  const bar = new SingleBar(
    {
      stream: stream as unknown as NodeJS.WritableStream,
      format: `${options.label} [{bar}] {value}/{total} | eta {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
    },
    Presets.shades_classic,
  );
  let started = false;
  return {
    start(total) {
      bar.start(total, 0);
      started = true;
    },
    setTotal(total) {
      if (started) bar.setTotal(total);
    },
    increment(by) {
      if (started) bar.increment(by);
    },
    stop() {
      if (started) bar.stop();
      started = false;
    },
  };
}
