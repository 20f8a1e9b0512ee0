import { MediaObjects1764000000000 } from './1764000000000-media-objects.migration';
import { MediaAuditEvents1764000000001 } from './1764000000001-media-audit-events.migration';
import { OwnerUsage1764000000002 } from './1764000000002-owner-usage.migration';
import { OwnerListingIndex1764000000003 } from './1764000000003-owner-listing-index.migration';
import { ShardedOwnerUsage1764000000004 } from './1764000000004-sharded-owner-usage.migration';
import { ClaimMarker1764000000005 } from './1764000000005-claim-marker.migration';
import { UsageTriggerOnChange1764000000006 } from './1764000000006-usage-trigger-on-change.migration';
import { FirstUseCopies1764000000007 } from './1764000000007-first-use-copies.migration';
import { LeanWriteIndexes1764000000008 } from './1764000000008-lean-write-indexes.migration';

/** Every migration, oldest first. Append new ones; never edit one that has shipped. */
export const MIGRATIONS = [
  MediaObjects1764000000000,
  MediaAuditEvents1764000000001,
  OwnerUsage1764000000002,
  OwnerListingIndex1764000000003,
  ShardedOwnerUsage1764000000004,
  ClaimMarker1764000000005,
  UsageTriggerOnChange1764000000006,
  FirstUseCopies1764000000007,
  LeanWriteIndexes1764000000008,
];

export { MediaObjects1764000000000, MediaAuditEvents1764000000001, OwnerUsage1764000000002, OwnerListingIndex1764000000003, ShardedOwnerUsage1764000000004, ClaimMarker1764000000005, UsageTriggerOnChange1764000000006, FirstUseCopies1764000000007, LeanWriteIndexes1764000000008 };
