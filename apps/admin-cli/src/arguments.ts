import { InvalidArgumentError } from 'commander';
import { UsageError } from './exit-codes';

/** Commander argument parsers: a bad value becomes a usage error (exit 2) naming the option. */
export function positiveInt(name: string, max = Number.MAX_SAFE_INTEGER) {
  return (raw: string): number => {
    const value = /^\s*\d+\s*$/.test(raw) ? Number(raw) : Number.NaN;
    if (!Number.isSafeInteger(value) || value < 1 || value > max) {
      throw new InvalidArgumentError(`${name} must be a whole number between 1 and ${max}.`);
    }
    return value;
  };
}

export function nonNegativeInt(name: string, max: number) {
  return (raw: string): number => {
    const value = /^\s*\d+\s*$/.test(raw) ? Number(raw) : Number.NaN;
    if (!Number.isSafeInteger(value) || value > max) {
      throw new InvalidArgumentError(`${name} must be a whole number between 0 and ${max}.`);
    }
    return value;
  };
}

/**
 * A media id as typed: trimmed (the service also accepts upper case and `JAN_`). An empty one is a
 * usage error here, before it could reach the service as the 404 of a missing route (which the CLI
 * reports as a wrong `--url`).
 */
export function mediaIdArgument(raw: string): string {
  const id = raw.trim();
  if (!id) throw new UsageError('a media id is required');
  return id;
}

/**
 * An `--owner` value, trimmed; `undefined` when the option was not given. An empty one (`--owner
 * "$OWNER"` with OWNER unset) is a usage error, never "no owner filter": that would list, or
 * purge, every owner's objects.
 */
export function ownerOption(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const owner = raw.trim();
  if (!owner) throw new UsageError('--owner needs a user id');
  return owner;
}
