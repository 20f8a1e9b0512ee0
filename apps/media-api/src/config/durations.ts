const UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400 };

/** Seconds from "900", "900s", "15m", "1h", "1d" or "250ms"; NaN when unparseable. */
export function parseDurationSeconds(value: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(value);
  if (!match) return Number.NaN;
  return Number(match[1]) * UNITS[(match[2] ?? 's').toLowerCase()];
}

/** Bytes from "20971520", "20MiB", "20MB", "64KiB", "1GiB". */
export function parseBytes(value: string): number {
  const match = /^\s*(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$/i.exec(value);
  if (!match) return Number.NaN;
  const unit = (match[2] ?? 'b').toLowerCase();
  const factor = { b: 1, kb: 1e3, kib: 1024, mb: 1e6, mib: 1024 ** 2, gb: 1e9, gib: 1024 ** 3 }[unit]!;
  return Number(match[1]) * factor;
}
