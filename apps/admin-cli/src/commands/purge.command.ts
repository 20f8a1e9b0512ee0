import { randomUUID } from 'node:crypto';
import { Option, type Command } from 'commander';
import type { AdminPurgeResult, AdminResource } from '@jan/media-client';
import { BrokenPipeError, CliError, ExitCode, understood, UsageError } from '../exit-codes';
import { createProgress, type Progress } from '../progress';
import { ownerOption, positiveInt } from '../arguments';
import type { CommandContext } from '../command-context';
import type { OutputName, StopSignal } from '../io';

interface PurgeOptions {
  expired?: boolean;
  owner?: string;
  yes?: boolean;
  dryRun?: boolean;
  batchSize?: number;
}

export interface PurgeFilters {
  ids?: string[];
  expired?: boolean;
  owner?: string;
}

/** Ids per delete request: small enough that the progress bar moves and one failure costs little. */
export const DEFAULT_BATCH = 100;
/** How many ids a human listing shows before summarising. */
const LISTED = 20;

export function registerPurgeCommand(media: Command, context: CommandContext): void {
  media
    .command('purge')
    .description(
      'Delete objects and their bytes: by id, or every object matching --expired and/or --owner (filters combine). ' +
        'A dry run unless --yes; on a terminal without --yes you are asked to confirm.',
    )
    .argument('[ids...]', 'media ids (jan_…) to purge')
    .option('--expired', 'objects past their retention date (pinned objects never expire)')
    .option('--owner <user>', "objects of this owner (with --expired: only this owner's expired objects)")
    .addOption(new Option('-y, --yes', 'delete without asking (for scripts)').conflicts('dryRun'))
    .option('--dry-run', 'only report what would be deleted, never ask')
    .option('--batch-size <n>', `ids per delete request (default ${DEFAULT_BATCH})`, positiveInt('--batch-size', 1000))
    .addHelpText(
      'after',
      `
Examples:
  jan media purge jan_01hqr8v9k2x3f4g5h6j7k8m9n0            dry run (or a prompt on a terminal)
  jan media purge jan_01hqr8v9k2x3f4g5h6j7k8m9n0 --yes      delete it
  jan media purge --expired --yes                          delete everything past retention
  jan media purge --owner user-42 --json                   what would go, as JSON

Exit code 3 when a named id does not exist (the others are still purged); 5 when the storage
refused to delete some objects (listed in \`failed\`; the others are still purged).`,
    )
    .action(async (rawIds: string[], options: PurgeOptions, command: Command) => {
      const ids = [...new Set(rawIds.map(normalizeId).filter(Boolean))];
      if (ids.length === 0 && !options.expired && options.owner === undefined) {
        throw new UsageError('name the ids to purge, or select objects with --expired and/or --owner <user>');
      }
      const owner = ownerOption(options.owner);
      const filters: PurgeFilters = {
        ids: ids.length ? ids : undefined,
        expired: options.expired ? true : undefined,
        owner,
      };
      const json = !!context.globals(command).json;
      const admin = context.client(command).admin;

      const plan = await dryRun(admin, filters);
      const notFound = missingIds(ids, plan.purged);
      let execute = !!options.yes;
      if (!execute && !options.dryRun && !json && context.io.interactive && plan.purged.length > 0) {
        context.io.stdout.write(renderPlan(plan, notFound));
        const confirmed = await context.io.confirm(
          `Delete ${plural(plan.purged.length, 'object')}${truncated(plan) ? ' (and any further matches)' : ''}? This cannot be undone. [y/N] `,
        );
        if (!confirmed) throw new CliError('cancelled: nothing was deleted', ExitCode.Cancelled, 'cancelled');
        execute = true;
      } else if (!execute) {
        context.output(command, purgeReport(plan.purged, true, notFound, truncated(plan)), () => renderPlan(plan, notFound));
        if (plan.purged.length > 0) context.note(command, 'dry run: nothing was deleted; add --yes to delete');
      }

      if (execute) {
        const progress = createProgress(context.io.stderr, {
          enabled: !json && (filters.ids === undefined || plan.purged.length > 1),
          label: 'purging',
        });
        // Ctrl-C, SIGTERM or SIGHUP finishes the batch in flight (the service completes it anyway)
        // and starts no other, so the report lists exactly what was deleted; a second signal ends the process.
        let stoppedBy: StopSignal | undefined;
        const stopWatching = context.io.onInterrupt((signal) => {
          stoppedBy = signal;
          progress.stop();
          if (!json) context.io.stderr.write(`${stopNote(signal)}: stopping after the batch in flight (${signal === 'SIGINT' ? 'Ctrl-C' : signal} again to quit at once)\n`);
        });
        // The reader of the output went away (`| head`, a closed log pipe): likewise stop after the
        // batch in flight rather than die mid-purge, and keep the report (see below).
        let closed: OutputName | undefined;
        const stopWatchingPipe = context.io.onBrokenPipe((stream) => {
          closed ??= stream;
          progress.stop();
        });
        let outcome: PurgeOutcome;
        try {
          outcome = await executePurge(
            admin,
            filters,
            plan,
            progress,
            options.batchSize ?? DEFAULT_BATCH,
            (soFar) => {
              // Reported like an interruption: what the service confirmed deleted before the failing request.
              if (json) context.io.stdout.write(JSON.stringify(purgeReport(soFar.deleted, false, notFound, false, soFar.failed, false, true), null, 2) + '\n');
              else context.io.stderr.write(`deleted ${plural(soFar.deleted.length, 'object')} before the failure\n`);
            },
            () => stoppedBy !== undefined || closed !== undefined,
          );
        } finally {
          stopWatching();
        }
        const { deleted, failed, more, interrupted } = outcome;
        // A signal during the last batch (or the final dry run that finds nothing left) stopped
        // nothing: the purge completed, and is reported and exits as completed. Say so after the
        // "stopping after the batch in flight" note, so the two do not disagree.
        if (stoppedBy && !interrupted && !json) context.io.stderr.write(`${stopNote(stoppedBy)} too late to stop anything: the purge had completed\n`);
        const report = purgeReport(deleted, false, notFound, more, failed, interrupted);
        const human = () =>
          interrupted
            ? `deleted ${plural(deleted.length, 'object')}, then stopped (${stoppedBy ? stopNote(stoppedBy) : `the reader of ${closed} went away`})\n`
            : `deleted ${plural(deleted.length, 'object')}${more ? ' (more match: run it again once the storage deletes)' : ''}\n`;
        try {
          if (closed !== 'stdout') {
            context.output(command, report, human);
            // A write to a closed pipe fails asynchronously: let its EPIPE arrive before deciding.
            await new Promise((resolve) => setImmediate(resolve));
          }
        } finally {
          stopWatchingPipe();
        }
        // Nobody reads stdout any more (usually found out only now, by writing the report there):
        // the report goes to stderr, so what was deleted is never lost; exit 141 as for any cut-short output.
        if (closed) {
          if (closed === 'stdout' && !json) context.io.stderr.write(human());
          throw new BrokenPipeError(closed, report);
        }
        if (interrupted) {
          throw new CliError(
            `${stopNote(stoppedBy)}: deleted ${plural(deleted.length, 'object')}; the rest were not deleted (run the same command again to continue)`,
            STOP_EXIT_CODES[stoppedBy ?? 'SIGINT'],
            'interrupted',
          );
        }
        if (failed.length) {
          // The service deleted the others and kept these (the retention sweep retries expired ones).
          const listed = failed.map((f) => `${f.id} (${f.code})`).join(', ');
          throw new CliError(`could not delete ${plural(failed.length, 'object')} now: ${listed}`, ExitCode.Server, 'purge_incomplete');
        }
      }
      if (notFound.length) {
        throw new CliError(`not found: ${notFound.join(', ')}`, ExitCode.NotFound, 'media_not_found');
      }
    });
}

/** The dry run lists what matches now; it is read-only, so it is safe to retry. */
async function dryRun(admin: AdminResource, filters: PurgeFilters): Promise<AdminPurgeResult> {
  return purgeAnswer(await admin.purge({ ...filters, dryRun: true }, { idempotencyKey: randomUUID() }));
}

function purgeAnswer(result: AdminPurgeResult): AdminPurgeResult {
  return understood(result, (r) => Array.isArray(r.purged), 'the purge endpoint');
}

/**
 * Deletes what the plan listed, in batches of ids. Each batch repeats the filters, so an object
 * that stopped matching since the dry run (pinned, say) is left alone. When the service capped
 * the plan (`truncated`), the next dry run fetches the rest; a round that deletes nothing ends
 * the loop so an undeletable match can never spin forever.
 */
export async function executePurge(
  admin: AdminResource,
  filters: PurgeFilters,
  firstPlan: AdminPurgeResult,
  progress: Progress,
  batchSize: number,
  onFailure: (soFar: Omit<PurgeOutcome, 'more' | 'interrupted'>) => void = () => {},
  stopRequested: () => boolean = () => false,
): Promise<PurgeOutcome> {
  const deleted: string[] = [];
  // By id: a capped plan lists an object the storage refused again in the next round.
  const failed = new Map<string, PurgeFailure>();
  let plan = firstPlan;
  let total = plan.purged.length;
  progress.start(total);
  try {
    for (;;) {
      const before = deleted.length;
      for (let i = 0; i < plan.purged.length; i += batchSize) {
        if (stopRequested()) {
          progress.stop();
          return { deleted, failed: [...failed.values()], more: false, interrupted: true };
        }
        const batch = plan.purged.slice(i, i + batchSize);
        // Deleting named ids is idempotent (already-gone ids are skipped), so a key that lets the
        // SDK retry a lost answer is safe even if the service does not replay it.
        const result = purgeAnswer(
          await admin.purge({ ids: batch, expired: filters.expired, owner: filters.owner, dryRun: false }, { idempotencyKey: randomUUID() }),
        );
        deleted.push(...result.purged);
        // A later round may delete what an earlier one could not: it is no failure then.
        for (const id of result.purged) failed.delete(id);
        for (const failure of result.failed ?? []) failed.set(failure.id, failure);
        progress.increment(batch.length);
      }
      if (!truncated(plan)) break;
      // Nothing deleted in a round (every object in it refused): stop, and say that more match.
      if (deleted.length === before) {
        progress.stop();
        return { deleted, failed: [...failed.values()], more: true, interrupted: false };
      }
      if (stopRequested()) {
        progress.stop();
        return { deleted, failed: [...failed.values()], more: false, interrupted: true };
      }
      plan = await dryRun(admin, filters);
      if (plan.purged.length === 0) break;
      total += plan.purged.length;
      progress.setTotal(total);
    }
  } catch (error) {
    progress.stop();
    onFailure({ deleted, failed: [...failed.values()] });
    throw error;
  }
  progress.stop();
  return { deleted, failed: [...failed.values()], more: false, interrupted: false };
}

/** What a purge did: `interrupted` when Ctrl-C, SIGTERM or SIGHUP stopped it before everything matching was deleted. */
export interface PurgeOutcome {
  deleted: string[];
  failed: PurgeFailure[];
  more: boolean;
  interrupted: boolean;
}

export function purgeReport(
  purged: readonly string[],
  dryRunOnly: boolean,
  notFound: readonly string[],
  more: boolean,
  failed: readonly PurgeFailure[] = [],
  interrupted = false,
  aborted = false,
) {
  return {
    dry_run: dryRunOnly,
    count: purged.length,
    purged,
    not_found: notFound,
    ...(more ? { truncated: true } : {}),
    ...(failed.length ? { failed } : {}),
    ...(interrupted ? { interrupted: true } : {}),
    ...(aborted ? { aborted: true } : {}),
  };
}

/** How the stop is named to humans: Ctrl-C is an interruption, SIGTERM a termination, SIGHUP a hang-up. */
function stopNote(signal: StopSignal | undefined): string {
  if (signal === 'SIGTERM') return 'terminated (SIGTERM)';
  if (signal === 'SIGHUP') return 'hung up (SIGHUP)';
  return 'interrupted';
}

/** 128 + the signal's number, as shells report a process the signal ended. */
const STOP_EXIT_CODES: Record<StopSignal, ExitCode> = {
  SIGINT: ExitCode.Interrupted,
  SIGTERM: ExitCode.Terminated,
  SIGHUP: ExitCode.HangUp,
};

/** An object the service could not delete this time, with the stable code of why. */
type PurgeFailure = NonNullable<AdminPurgeResult['failed']>[number];

export function renderPlan(plan: AdminPurgeResult, notFound: readonly string[]): string {
  const lines: string[] = [];
  if (plan.purged.length === 0) lines.push('nothing to purge');
  else {
    lines.push(`would delete ${plural(plan.purged.length, 'object')}${truncated(plan) ? ' (the service capped this list; more match)' : ''}:`);
    for (const id of plan.purged.slice(0, LISTED)) lines.push(`  ${id}`);
    if (plan.purged.length > LISTED) lines.push(`  … and ${plan.purged.length - LISTED} more (--json lists them all)`);
  }
  if (notFound.length) lines.push(`not found: ${notFound.join(', ')}`);
  return lines.join('\n') + '\n';
}

/** Ids as the service prints them: trimmed, lowercase (it accepts `JAN_` and upper case too). */
export function normalizeId(raw: string): string {
  return raw.trim().toLowerCase();
}

/** Named ids the dry run did not list: unknown, malformed, or excluded by the other filters. */
export function missingIds(requested: readonly string[], matched: readonly string[]): string[] {
  const found = new Set(matched.map(normalizeId));
  return requested.filter((id) => !found.has(id));
}

function truncated(plan: AdminPurgeResult): boolean {
  return plan.truncated === true;
}

export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
