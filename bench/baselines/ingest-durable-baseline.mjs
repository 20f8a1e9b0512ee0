// The ingest baseline's work made durable as the service's local disk makes it (reported, not a
// target): receive the body, SHA-256 it, write it to a temporary file, fdatasync it, rename it into
// place and fsync the directory (one directory fsync shared by the writes that wait for it, as
// LocalDiskMediaStorage does).
import { createHash, randomUUID } from 'node:crypto';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { sharedDirectorySync } from './directory-sync.mjs';
import { json, listen } from './listen.mjs';

const dir = process.argv[2];
if (!dir) throw new Error('usage: ingest-durable-baseline.mjs <dir>');
let counter = 0;

const syncDirectory = sharedDirectorySync(dir);

listen(async (req, res) => {
  try {
    const hash = createHash('sha256');
    const chunks = [];
    let bytes = 0;
    for await (const chunk of req) {
      hash.update(chunk);
      chunks.push(chunk);
      bytes += chunk.length;
    }
    const path = join(dir, `${process.pid}-${++counter}.bin`);
    const temporary = `${path}.${randomUUID()}.partial`;
    const handle = await open(temporary, 'wx');
    try {
      await handle.writeFile(Buffer.concat(chunks, bytes));
      await handle.datasync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
    await syncDirectory();
    json(res, 200, { sha256: hash.digest('hex'), bytes });
  } catch (error) {
    json(res, 500, { error: String(error) });
  }
});
