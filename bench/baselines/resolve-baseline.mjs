// Irreducible work of resolve: read the JSON body, parse it, serialize it back.
import { json, listen } from './listen.mjs';

listen((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    json(res, 200, { payload: parsed.payload });
  });
});
