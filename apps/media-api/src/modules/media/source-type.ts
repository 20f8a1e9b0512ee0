import { DomainError } from '@jan/domain';

export type SourceType = 'data_url' | 'remote_url';

const ALIASES: Record<string, SourceType> = {
  data_url: 'data_url',
  dataurl: 'data_url',
  datauri: 'data_url',
  remote_url: 'remote_url',
  remoteuri: 'remote_url',
  remote: 'remote_url',
};

/** The contract's source types, matched case-insensitively with their aliases. */
export function parseSourceType(raw: unknown): SourceType {
  const type = typeof raw === 'string' ? ALIASES[raw.trim().toLowerCase()] : undefined;
  if (!type) throw new DomainError('unknown_source_type', `unknown source type: ${JSON.stringify(raw)}; use data_url or remote_url`);
  return type;
}
