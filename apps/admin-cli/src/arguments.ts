import { InvalidArgumentError } from 'commander';

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
