/** The knobs the use cases need, taken from validated configuration by the app. */
export interface MediaPolicy {
  /** Largest upload accepted, in bytes. */
  maxBytes: number;
  /** Days until an unpinned object is deleted; 0 keeps objects forever. */
  retentionDays: number;
  /** Lifetime of signed read URLs, in seconds. */
  presignTtlSeconds: number;
  /** Inline (`data:` URL) resolve mode. */
  inline: {
    enabled: boolean;
    maxImageBytes: number;
    maxRequestBytes: number;
  };
}

export function retentionFrom(now: Date, policy: Pick<MediaPolicy, 'retentionDays'>): Date | null {
  if (policy.retentionDays <= 0) return null;
  return new Date(now.getTime() + policy.retentionDays * 86_400_000);
}
