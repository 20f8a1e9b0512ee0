// Preloaded into the app by `bench/run.mjs --profile` (node -r). The V8 CPU profiler that
// `node --cpu-prof` uses, but driven by SIGWINCH so that each measured window gets its own
// profile without boot and migrations in it. `--cpu-prof` itself only writes on a clean exit,
// and Nest's shutdown hook re-raises SIGTERM, so the app never exits cleanly. SIGWINCH because
// Nest's enableShutdownHooks() claims SIGUSR2 and Node keeps SIGUSR1 for the inspector.
'use strict';
const { Session } = require('node:inspector');
const { writeFileSync, mkdirSync } = require('node:fs');
const { join } = require('node:path');

const dir = process.env.BENCH_CPU_PROFILE_DIR;
const session = new Session();
session.connect();
let running = false;
let label = 0;

const post = (method, params) =>
  new Promise((resolve, reject) => session.post(method, params, (error, result) => (error ? reject(error) : resolve(result))));

process.on('SIGWINCH', async () => {
  try {
    if (!running) {
      running = true;
      await post('Profiler.enable');
      await post('Profiler.setSamplingInterval', { interval: 500 });
      await post('Profiler.start');
      return;
    }
    running = false;
    const { profile } = await post('Profiler.stop');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `window-${++label}.cpuprofile`), JSON.stringify(profile));
    writeFileSync(join(dir, `window-${label}.done`), '');
  } catch (error) {
    process.stderr.write(`cpu-profile-hook: ${error && error.stack}\n`);
  }
});
