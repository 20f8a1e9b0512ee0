// The least a new upload must cost with everything issue 6 asks of ingest, and no framework:
// parse the JSON, decode the data URL's base64, sniff the type (file-type), prove the image
// decodes (the service's own check: png-check.ts for a plain PNG, else sharp's whole decode with
// failOn: 'error'), SHA-256 it, write it durably (O_DSYNC, straight to its final name, one shared
// directory fsync) and insert one row (one statement, a plain pg pool of the app's size). No auth,
// no quotas, no audit, no pending row, no dedupe lookup, no validation of the request beyond what
// parsing needs: a floor, reported only. `BENCH_REQUIRED_DECODE=sharp` decodes every image with
// sharp instead, as the service did before the fourteenth pass.
import { createHash } from 'node:crypto';
import { constants, open, write, close } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { sharedDirectorySync } from './directory-sync.mjs';
import { json, listen } from './listen.mjs';

const [dir, dsn] = process.argv.slice(2);
if (!dir || !dsn) throw new Error('usage: ingest-required-baseline.mjs <dir> <dsn>');
const appRequire = createRequire(new URL('../../apps/media-api/package.json', import.meta.url));
const sharp = appRequire('sharp');
sharp.cache(false);
const { fileTypeFromBuffer } = await import(appRequire.resolve('file-type'));
// The built app's check (run `pnpm turbo run build` first, as for the app itself).
const { plainPngDecodes } = appRequire('./dist/infrastructure/images/png-check.js');
const sharpOnly = process.env.BENCH_REQUIRED_DECODE === 'sharp';
const pg = createRequire(new URL('../../libs/persistence/package.json', import.meta.url))('pg');
const pool = new pg.Pool({ connectionString: dsn, max: 10 });
// A table of its own in the bench's scratch database (dropped with it).
const table = `bench_required_${process.pid}`;
await pool.query(`CREATE TABLE ${table} (id text PRIMARY KEY, owner text NOT NULL, sha256 text NOT NULL, bytes int NOT NULL, mime text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), UNIQUE (owner, sha256))`);
let counter = 0;

const syncDirectory = sharedDirectorySync(dir);

function writeDurably(path, data) {
  return new Promise((resolve, reject) => {
    open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DSYNC, 0o600, (error, fd) => {
      if (error) return reject(error);
      write(fd, data, 0, data.length, 0, (writeError) => close(fd, (closeError) => (writeError ?? closeError ? reject(writeError ?? closeError) : resolve())));
    });
  });
}

listen(async (req, res) => {
  try {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    const url = body.source.data_url;
    const data = Buffer.from(url.slice(url.indexOf(',') + 1), 'base64');
    const type = await fileTypeFromBuffer(data);
    if (type?.mime !== 'image/png') return json(res, 415, { error: 'not a png' });
    if (sharpOnly || !(await plainPngDecodes(data))) await sharp(data, { failOn: 'error', sequentialRead: true }).raw().toBuffer();
    const sha256 = createHash('sha256').update(data).digest('hex');
    const id = `${process.pid}-${++counter}`;
    await writeDurably(join(dir, `${id}.png`), data);
    await syncDirectory();
    await pool.query(`INSERT INTO ${table} (id, owner, sha256, bytes, mime) VALUES ($1, $2, $3, $4, $5)`, [id, 'bench', sha256, data.length, type.mime]);
    json(res, 200, { id, sha256, bytes: data.length, mime_type: type.mime });
  } catch (error) {
    json(res, 500, { error: String(error) });
  }
});
