import type { Database } from '../../src';
import { TypeOrmMediaRepository } from '../../src';
import type { MediaRepositorySubject } from './media-repository.contract';

/** The contract's view of a repository on an open database, counting every statement sent. */
export function typeOrmSubject(db: Database): MediaRepositorySubject & { stop(): void } {
  let count = 0;
  const stop = db.onQuery(() => count++);
  return {
    repository: new TypeOrmMediaRepository(db.writer, db.reader),
    queryCount: () => count,
    async deleteOwners(ownerIds) {
      if (ownerIds.length) await db.writer.query('DELETE FROM media_api.media_objects WHERE created_by = ANY($1)', [ownerIds]);
    },
    stop,
  };
}
