const UNITS: Record<string, number> = { ns: 1e-9, us: 1e-6, 'µs': 1e-6, 'μs': 1e-6, ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400 };
const SEGMENT = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d)/giy;

/**
 * Seconds from "900", "900s", "15m", "1h", "1d" or "250ms", or a duration as Go's
 * time.ParseDuration writes it ("1h30m", "168h0m0s", ".5h", "1500us"), which the earlier service
 * read its variables with; NaN when unparseable.
 */
export function parseDurationSeconds(value: string): number {
  const single = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(value);
  if (single) return Number(single[1]) * UNITS[(single[2] ?? 's').toLowerCase()]!;
  const text = value.trim();
  let seconds = 0;
  SEGMENT.lastIndex = 0;
  while (SEGMENT.lastIndex < text.length) {
    const segment = SEGMENT.exec(text);
    if (!segment) return Number.NaN;
    seconds += Number(segment[1]) * UNITS[segment[2]!.toLowerCase()]!;
  }
  return text === '' ? Number.NaN : seconds;
}

/** Bytes from "20971520", "20MiB", "20MB", "64KiB", "1GiB". */
export function parseBytes(value: string): number {
  const match = /^\s*(\d+)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$/i.exec(value);
  if (!match) return Number.NaN;
  const unit = (match[2] ?? 'b').toLowerCase();
  const factor = { b: 1, kb: 1e3, kib: 1024, mb: 1e6, mib: 1024 ** 2, gb: 1e9, gib: 1024 ** 3 }[unit]!;
  return Number(match[1]) * factor;
}
