import { MediaClient, type MediaClientOptions } from '../client.ts';
import { MediaClientConfigError } from '../errors.ts';
import { findCutoverViolations, validateCutover, type CutoverViolation } from './cutover.ts';
import { dualWriteBody, dualWriteIngest, type DualWriteBodyResult, type DualWriteOptions, type DualWriteResult } from './dual-write.ts';
import { resolveForProvider, type LatencyHook, type ResolveForProviderOptions } from './resolve-for-provider.ts';

/** `off`: no checks; `report`: violations go to `onCutoverViolation`; `enforce`: they throw. */
export type CutoverMode = 'off' | 'report' | 'enforce';

export interface MediaMigrationOptions {
  /**
   * Master switch. Fallback: `MEDIA_CLIENT_ENABLED`, read case-insensitively with surrounding spaces
   * ignored: `true`/`1`/`yes`/`on` or `false`/`0`/`no`/`off` (unset or empty: off). Anything else
   * throws a {@link MediaClientConfigError}. Default off.
   */
  enabled?: boolean;
  /** The client to use; built from `clientOptions` (and the environment) when omitted. */
  client?: MediaClient;
  clientOptions?: MediaClientOptions;
  /**
   * Step 4. Fallback: `MEDIA_CLIENT_CUTOVER`. Default `off`. Read like the variable (case and
   * surrounding spaces ignored); another value throws. Ignored while `enabled` is false. Typed as
   * any string so that a configuration value passes as it is (`string & {}` keeps the modes'
   * completion); the check is at boot, here.
   */
  cutover?: CutoverMode | (string & {});
  /** Providers resolved with `mode: 'inline'` (see DEFAULT_INLINE_PROVIDERS). */
  inlineProviders?: readonly string[];
  /** Dual-write failures (never thrown). */
  onError?: DualWriteOptions['onError'];
  /** Resolve latency, unless a call brings its own hook. */
  onLatency?: LatencyHook;
  /** Called with the violations of each checked body in `report` mode. */
  onCutoverViolation?: (violations: CutoverViolation[]) => void;
  /**
   * Time budget of one `dualWriteIngest` or `dualWriteBody` call, retries and backoff included
   * (one deadline, not a per-attempt timeout). Default 10 000 ms, so the chat path is never held
   * long. A call's own `timeoutMs` overrides it.
   */
  dualWriteTimeoutMs?: number;
  env?: Record<string, string | undefined>;
}

/** The four migration steps, bound to one flag. When disabled, every helper is an identity. */
export interface MediaMigration {
  readonly enabled: boolean;
  readonly cutover: CutoverMode;
  /** The client, when enabled. */
  readonly client: MediaClient | null;
  /** Step 2: ingest one data URL / URL; never throws. */
  dualWriteIngest(input: string, options?: DualWriteOptions): Promise<DualWriteResult>;
  /** Step 2 over a whole OpenAI-style body; never throws. */
  dualWriteBody<T>(body: T, options?: DualWriteOptions & { concurrency?: number }): Promise<DualWriteBodyResult<T>>;
  /** Step 3: resolve placeholders right before the provider call. */
  resolveForProvider<T>(body: T, options?: ResolveForProviderOptions): Promise<T>;
  /** Step 4: per `cutover` mode, ignore, report or reject bodies with raw images. Returns `body`. */
  validateCutover<T>(body: T): T;
  /** Step 4's check without side effects (empty when disabled). */
  findCutoverViolations(body: unknown): CutoverViolation[];
}

const TRUE_WORDS = new Set(['true', '1', 'yes', 'on']);
const FALSE_WORDS = new Set(['false', '0', 'no', 'off', '']);

/**
 * A boolean environment variable; unset or empty is off. Anything but the usual spellings throws:
 * `ture` must fail the deploy, not quietly switch the migration off.
 */
function flag(value: string | undefined, variable: string): boolean {
  const word = (value ?? '').trim().toLowerCase();
  if (TRUE_WORDS.has(word)) return true;
  if (FALSE_WORDS.has(word)) return false;
  throw new MediaClientConfigError(variable, `${variable} must be true/false, 1/0, yes/no or on/off, not ${JSON.stringify(value)}`);
}

/**
 * The same reading for the option and the environment; unset or empty is `off`. Anything else
 * throws at boot: a typo must fail the deploy, not leave raw images accepted.
 */
function cutoverMode(value: string | undefined, source: string): CutoverMode {
  const mode = (value ?? '').trim().toLowerCase();
  if (mode === '') return 'off';
  if (mode === 'off' || mode === 'report' || mode === 'enforce') return mode;
  throw new MediaClientConfigError(source, `${source} must be off, report or enforce, not ${JSON.stringify(value)}`);
}

/**
 * Builds the migration kit for llm-api. Explicit options win over the environment, which is read
 * once, here.
 */
export function createMediaMigration(options: MediaMigrationOptions = {}): MediaMigration {
  const env = options.env ?? process.env;
  const enabled = options.enabled ?? flag(env['MEDIA_CLIENT_ENABLED'], 'MEDIA_CLIENT_ENABLED');
  if (!enabled) return disabledMigration;

  const client = options.client ?? new MediaClient({ env, ...options.clientOptions });
  const cutover =
    options.cutover !== undefined ? cutoverMode(options.cutover, 'cutover') : cutoverMode(env['MEDIA_CLIENT_CUTOVER'], 'MEDIA_CLIENT_CUTOVER');
  const dualWriteDefaults: DualWriteOptions = {
    onError: options.onError,
    timeoutMs: options.dualWriteTimeoutMs ?? 10_000,
  };

  return {
    enabled: true,
    cutover,
    client,
    dualWriteIngest: (input, callOptions = {}) =>
      dualWriteIngest(client, input, { ...dualWriteDefaults, ...callOptions }),
    dualWriteBody: (body, callOptions = {}) => dualWriteBody(client, body, { ...dualWriteDefaults, ...callOptions }),
    resolveForProvider: (body, callOptions = {}) =>
      resolveForProvider(client, body, {
        inlineProviders: options.inlineProviders,
        onLatency: options.onLatency,
        ...callOptions,
      }),
    validateCutover(body) {
      if (cutover === 'enforce') return validateCutover(body);
      if (cutover === 'report') {
        const violations = findCutoverViolations(body);
        if (violations.length > 0 && options.onCutoverViolation) {
          try {
            options.onCutoverViolation(violations);
          } catch {
            // Reporting must not reject the request: that is what `enforce` is for.
          }
        }
      }
      return body;
    },
    findCutoverViolations: (body) => findCutoverViolations(body),
  };
}

const disabledMigration: MediaMigration = Object.freeze({
  enabled: false,
  cutover: 'off' as const,
  client: null,
  dualWriteIngest: async (input: string) => ({ ref: null, id: null, legacyUrl: input }),
  dualWriteBody: async <T>(body: T) => ({ body, legacyBody: body, images: [] }),
  resolveForProvider: async <T>(body: T) => body,
  validateCutover: <T>(body: T) => body,
  findCutoverViolations: () => [],
});
