import { InMemoryMediaRepository } from '@jan/domain/testing';
import { mediaRepositoryContract } from '../test/integration/media-repository.contract';

// The fake the use-case specs rely on must behave like the real adapters.
mediaRepositoryContract('in-memory fake', async () => {
  const repository = new InMemoryMediaRepository();
  return { repository, queryCount: () => repository.queries };
});
