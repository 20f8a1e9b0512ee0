import { Readable } from 'node:stream';

/**
 * Passes `source` through, and fails it with `onStall()` when the source sends nothing for `ms`
 * while the reader is waiting for data. Time the reader itself takes (a slow client pausing the
 * stream) does not count: only a source that has gone silent (a bucket that stopped sending
 * midway, whose connection stays open) does, which socket timeouts cannot tell apart.
 */
export function guardAgainstStall(source: Readable, ms: number, onStall: () => Error): Readable {
  let timer: NodeJS.Timeout | undefined;
  const disarm = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
  };
  const arm = () => {
    disarm();
    timer = setTimeout(() => guarded.destroy(onStall()), ms);
  };
  const guarded = new Readable({
    read() {
      arm();
      source.resume();
    },
    destroy(error, callback) {
      disarm();
      source.destroy();
      callback(error);
    },
  });
  source.on('data', (chunk: Buffer) => {
    if (guarded.push(chunk)) arm();
    else {
      disarm();
      source.pause();
    }
  });
  source.once('end', () => {
    disarm();
    guarded.push(null);
  });
  source.once('error', (error) => guarded.destroy(error));
  source.pause();
  return guarded;
}
