// Preloaded (`node -r`) into a built service by bundled-start.test.ts: appends to the file named by
// JAN_TEST_EXTERNAL_LOADS each package the bundle loaded from node_modules (loads that succeeded;
// Nest probes for optional packages this app does not install, and those fail).
const Module = require('node:module');
const { appendFileSync } = require('node:fs');
const { sep } = require('node:path');

const log = process.env.JAN_TEST_EXTERNAL_LOADS;
const bundle = `${sep}bundle${sep}app.js`;
const load = Module._load;
Module._load = function (request, parent, ...rest) {
  const loaded = load.call(this, request, parent, ...rest);
  if (log && parent?.filename?.endsWith(bundle) && !Module.isBuiltin(request)) appendFileSync(log, `${request}\n`);
  return loaded;
};
