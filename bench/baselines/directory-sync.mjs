import { open } from 'node:fs/promises';

/**
 * A directory fsync shared as LocalDiskMediaStorage shares it: every caller that asks while one
 * runs joins the next one. Returns the function to call after each write into `dir`.
 */
export function sharedDirectorySync(dir) {
  let running = null;
  let next = null;
  const start = () => {
    const run = (async () => {
      const handle = await open(dir, 'r');
      try {
        await handle.sync();
      } finally {
        await handle.close();
      }
    })();
    running = run;
    run.finally(() => {
      if (running === run) running = null;
    }).catch(() => undefined);
    return run;
  };
  return () => {
    if (!running) return start();
    next ??= running.catch(() => undefined).then(() => {
      next = null;
      return start();
    });
    return next;
  };
}
