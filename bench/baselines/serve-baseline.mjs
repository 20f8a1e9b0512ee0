// Irreducible work of serve: stream the same file from disk.
import { createReadStream, statSync } from 'node:fs';
import { listen } from './listen.mjs';

const path = process.argv[2];
if (!path) throw new Error('usage: serve-baseline.mjs <file>');
const { size } = statSync(path);

listen((req, res) => {
  res.writeHead(200, { 'content-type': 'image/png', 'content-length': size });
  createReadStream(path).pipe(res);
});
