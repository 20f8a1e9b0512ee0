#!/usr/bin/env node
import { endQuietlyOnBrokenPipe, processIO } from './io';
import { run } from './program';

endQuietlyOnBrokenPipe();

run(process.argv.slice(2), processIO()).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`jan: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exitCode = 1;
  },
);
