// Irreducible work of ingest: receive the body, SHA-256 it and write it to disk.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { json, listen } from './listen.mjs';

const dir = process.argv[2];
if (!dir) throw new Error('usage: ingest-baseline.mjs <dir>');
let counter = 0;

listen((req, res) => {
  const hash = createHash('sha256');
  const file = createWriteStream(join(dir, `${process.pid}-${++counter}.bin`));
  let bytes = 0;
  req.on('data', (chunk) => {
    hash.update(chunk);
    bytes += chunk.length;
    if (!file.write(chunk)) {
      req.pause();
      file.once('drain', () => req.resume());
    }
  });
  req.on('end', () => file.end());
  file.on('close', () => json(res, 200, { sha256: hash.digest('hex'), bytes }));
  file.on('error', (error) => json(res, 500, { error: String(error) }));
});
