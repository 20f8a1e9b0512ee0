// The floor for resolve on PostgreSQL: what resolve-baseline.mjs does (parse the JSON, serialize
// it back), plus the one database round trip every resolve must make (issue 6: exactly one query
// per request): `SELECT * … WHERE id = ANY($1)` for the payload's ids, over a plain pg pool of
// the app's size. No framework, no placeholder walk, no auth, no signing.
import { createRequire } from 'node:module';
import { json, listen } from './listen.mjs';

const [dsn, idList] = process.argv.slice(2);
if (!dsn || !idList) throw new Error('usage: resolve-query-baseline.mjs <dsn> <id,id,...>');
// pg is a dependency of the persistence library, not of the bench.
const pg = createRequire(new URL('../../libs/persistence/package.json', import.meta.url))('pg');
const pool = new pg.Pool({ connectionString: dsn, max: 10 });
const ids = idList.split(',');

listen((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    pool.query('SELECT * FROM media_api.media_objects WHERE id = ANY($1::varchar[])', [ids]).then(
      (result) => json(res, result.rows.length === ids.length ? 200 : 500, { payload: parsed.payload }),
      (error) => json(res, 500, { error: String(error) }),
    );
  });
});
