/**
 * The worker's settings resolved, in one place: `resolveSettings` fills in the defaults and checks every
 * rule, for `startWorker` and for `posthog-outbox worker` before it starts anything. The settings
 * themselves (names, flags, units, ranges, defaults) are declared in worker/settings/schema.ts. Errors
 * name the setting (`batchSize`), never a flag: the CLI names its flag and variable (cli/errors.ts). Pure.
 */
import { refuseUrlCredentials } from '../../src/connection/config.ts';
import { formatDuration } from './duration.ts';
import { OutboxError } from '../../src/errors/errors.ts';
import { redactSecrets } from '../../src/errors/redact.ts';
import { quoteSchema } from '../../src/outbox/columns.ts';
import type { BackoffPolicy } from '../settle/backoff.ts';
import type { CaptureMode, PostHogTarget } from '../send/sender.ts';
import { defaultOf, expected, SETTINGS, type SettingName, type SettingSpec } from './schema.ts';

/**
 * What a worker is asked for (`WorkerOptions` has these and its connection and hooks); unset means the
 * default. What each does, its unit, range and default: `SETTINGS` (worker/settings/schema.ts), shown in
 * docs/settings.md. Durations are milliseconds.
 */
export interface SettingsInput {
  /** `captureMode`: Capture v0 (`/batch/`, the default) or V1 (per-event verdicts). */
  posthog: { apiKey: string; host?: string; requestTimeoutMs?: number; captureMode?: CaptureMode };
  schema?: string;
  batchSize?: number;
  concurrency?: number;
  maxAgeMs?: number;
  historicalAfterMs?: number;
  leaseMs?: number;
  maxPassMs?: number;
  identifyRefreshMs?: number;
  deadLetterRetentionMs?: number;
  /** `backoff.maxMs` under the default `backoff.baseMs` is also the first delay. */
  backoff?: { baseMs?: number; maxMs?: number };
  safetyNetCron?: string;
  unhealthyAfterMs?: number;
  /** What `stop()` waits by default. */
  shutdownTimeoutMs?: number;
  /** Serve `/healthz` and `/metrics` (Prometheus) on this port (0: any free port). Default: not served. */
  metrics?: { port: number; host?: string };
}

/** A drain pass's share of the settings (worker/claim/pass.ts), and the hook it reports its requests to. */
export interface DrainSettings {
  schema: string;
  target: Required<PostHogTarget>;
  /** Events (rows) per claim and per PostHog request; a claim also stops at a byte budget (worker/claim/claim.sql.ts CLAIM_BYTES). */
  batchSize: number;
  /** Batches in flight at once in this process. */
  concurrency: number;
  /** A row older than this (since it was recorded) is dead-lettered when claimed instead of being sent. */
  maxAgeMs: number;
  /** An event whose timestamp is older than this is sent flagged `historical_migration` (0: none is); worker/send/lanes.ts. */
  historicalAfterMs: number;
  /** How long a batch's transaction may sit idle (a request out) before PostgreSQL ends it and frees its rows. */
  leaseMs: number;
  /** A pass stops claiming after this long; the worker starts another if work is left. */
  maxPassMs: number;
  /** An unchanged profile is identified again once its last identify is this old (0: once per pass). */
  identifyRefreshMs: number;
  backoff: BackoffPolicy;
  /** Called after each PostHog request with its duration and outcome (`accepted`, the HTTP status, `network`). */
  observeRequest?: (seconds: number, outcome: string) => void;
  /** Called once per batch PostHog accepted events of with a warning (Capture V1): the worker logs it. */
  onWarnings?: (warnings: BatchWarnings) => void;
}

/** A batch's Capture V1 warnings: the summary line, how many events got each of PostHog's details, and which. */
export interface BatchWarnings {
  message: string;
  details: Record<string, number>;
  uuids: string[];
}

export interface WorkerSettings extends Omit<DrainSettings, 'observeRequest' | 'onWarnings'> {
  target: Required<PostHogTarget>;
  deadLetterRetentionMs: number;
  safetyNetCron: string;
  unhealthyAfterMs: number;
  shutdownTimeoutMs: number;
  metrics: { port: number; host: string } | undefined;
}

/** `value`, or the default when unset; an OutboxError naming `name` unless it is in the setting's range. */
function numeric(name: SettingName, value: number | undefined): number {
  const spec: SettingSpec = SETTINGS[name];
  const v = value ?? (spec.default as number);
  const ok = Number.isInteger(v) && ((v >= spec.min! && v <= spec.max!) || (v === 0 && spec.zero !== undefined));
  if (!ok) throw new OutboxError('invalid', name, `must be ${expected(name)}, got ${spec.kind === 'duration' ? formatDuration(v) : v}`);
  return v;
}

/** `value`, or the default when unset; an OutboxError naming `name` unless it is one of the setting's choices. */
function choice(name: SettingName, value: string | undefined): string {
  const spec: SettingSpec = SETTINGS[name];
  const v = value ?? (spec.default as string);
  if (!spec.choices!.includes(v)) throw new OutboxError('invalid', name, `must be ${expected(name)}, got ${JSON.stringify(v)}`);
  return v;
}

/** A PostHog host: an http(s) URL without credentials (its password would reach the logs), without trailing slashes. */
export function checkPostHogHost(value: string, field = 'posthog.host'): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // Shown with any credentials masked: a host that is refused is still someone's secret.
    throw new OutboxError('invalid', field, `is not a URL: ${JSON.stringify(redactSecrets(value))}; expected e.g. https://us.i.posthog.com`);
  }
  refuseUrlCredentials(value, field);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new OutboxError('invalid', field, `must be an http(s) URL, got ${url.protocol}//`);
  return value.replace(/\/+$/, '');
}

/** Fills in the defaults and checks every rule; throws OutboxError naming the setting at fault. */
export function resolveSettings(input: SettingsInput): Readonly<WorkerSettings> {
  const apiKey = input.posthog.apiKey;
  if (typeof apiKey !== 'string' || apiKey.trim() === '') throw new OutboxError('required', 'posthog.apiKey', 'is not set; give the PostHog project API key');
  const schema = input.schema ?? defaultOf('schema');
  quoteSchema(schema);
  // Before anything connects: such a host could never be sent to, and its password would reach the logs.
  const host = checkPostHogHost(input.posthog.host ?? defaultOf('posthog.host'));
  const requestTimeoutMs = numeric('posthog.requestTimeoutMs', input.posthog.requestTimeoutMs);
  const captureMode = choice('posthog.captureMode', input.posthog.captureMode) as CaptureMode;
  // A lease no longer than a request lets another worker resend rows still in flight.
  const leaseMs = numeric('leaseMs', input.leaseMs ?? Math.max(defaultOf('leaseMs'), requestTimeoutMs * 3));
  if (leaseMs <= requestTimeoutMs)
    throw new OutboxError(
      'invalid',
      'leaseMs',
      `must be longer than the request timeout (${formatDuration(requestTimeoutMs)}), got ${formatDuration(leaseMs)}`,
    );
  const maxMs = numeric('backoff.maxMs', input.backoff?.maxMs);
  const baseMs = numeric('backoff.baseMs', input.backoff?.baseMs ?? Math.min(defaultOf('backoff.baseMs'), maxMs));
  if (maxMs < baseMs)
    throw new OutboxError('invalid', 'backoff.maxMs', `must be at least the first retry delay (${formatDuration(baseMs)}), got ${formatDuration(maxMs)}`);
  return Object.freeze({
    schema,
    target: Object.freeze({ apiKey, host, requestTimeoutMs, captureMode }),
    batchSize: numeric('batchSize', input.batchSize),
    concurrency: numeric('concurrency', input.concurrency),
    maxAgeMs: numeric('maxAgeMs', input.maxAgeMs),
    historicalAfterMs: numeric('historicalAfterMs', input.historicalAfterMs),
    leaseMs,
    maxPassMs: numeric('maxPassMs', input.maxPassMs),
    identifyRefreshMs: numeric('identifyRefreshMs', input.identifyRefreshMs),
    deadLetterRetentionMs: numeric('deadLetterRetentionMs', input.deadLetterRetentionMs),
    backoff: Object.freeze({ baseMs, maxMs }),
    safetyNetCron: input.safetyNetCron ?? defaultOf('safetyNetCron'),
    unhealthyAfterMs: numeric('unhealthyAfterMs', input.unhealthyAfterMs),
    shutdownTimeoutMs: numeric('shutdownTimeoutMs', input.shutdownTimeoutMs),
    metrics: input.metrics
      ? Object.freeze({ port: numeric('metrics.port', input.metrics.port), host: input.metrics.host ?? defaultOf('metrics.host') })
      : undefined,
  });
}
