/**
 * The worker's settings, resolved in one place: every default and every rule. `startWorker` resolves its
 * options here; `posthog-outbox worker` only parses flags and environment, shows these defaults in its help
 * and names its flags in the errors (`SETTING_FLAGS`). Pure: no I/O.
 */
import { DEFAULT_SCHEMA, refuseUrlCredentials } from '../src/config.ts';
import { OutboxError } from '../src/errors.ts';
import { quoteSchema } from '../src/sql/index.ts';
import { DEFAULT_IDENTIFY_REFRESH_MS } from '../src/identify/events.ts';
import { DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.ts';
import type { DrainSettings } from './drain.ts';
import type { PostHogTarget } from './sender.ts';

export const WORKER_DEFAULTS = {
  schema: DEFAULT_SCHEMA,
  /** Events per PostHog request (and per claim). */
  batchSize: 1000,
  /** Batches in flight at once in one process. */
  concurrency: 2,
  /** An event still undelivered this long after it was recorded is dead-lettered. */
  maxAgeMs: 7 * 86_400_000,
  requestTimeoutMs: 10_000,
  /** The lease is at least this, and at least three request timeouts. */
  minLeaseSeconds: 60,
  /** A run ends after this long; the next follows at once. */
  maxRunMs: 10_000,
  /** An unchanged profile is identified again once its last identify is this old. */
  identifyRefreshMs: DEFAULT_IDENTIFY_REFRESH_MS,
  /** Dead letters older than this are deleted. */
  deadLetterRetentionMs: 30 * 86_400_000,
  backoff: DEFAULT_BACKOFF,
  /** The safety-net drain run. */
  safetyNetCron: '* * * * *',
  /** `/healthz` says unavailable once every drain run has failed (the database refusing) for this long. */
  unhealthyAfterMs: 5 * 60_000,
} as const;

/** What a worker is asked for (`WorkerOptions` has these and its connection and hooks); unset means the default. */
export interface SettingsInput {
  posthog: PostHogTarget;
  /** Postgres schema of the outbox. Default `posthog_outbox`. */
  schema?: string;
  /** Events per PostHog request. Default 1000. */
  batchSize?: number;
  /** Batches in flight at once in this process. Default 2. */
  concurrency?: number;
  /**
   * An event still undelivered this long after it was recorded is dead-lettered (reason says so) instead of
   * sent. Default 7 days. Nothing else about time dead-letters an event: target failures are retried for as
   * long as they last.
   */
  maxAgeMs?: number;
  /**
   * The lease: how long a worker may hold claimed rows without a word to PostgreSQL (while a request to
   * PostHog is out) before PostgreSQL ends its session and the rows are free for others. A worker that
   * dies frees its rows as soon as its connection closes. Default 60 s (keep it above the request timeout).
   */
  leaseSeconds?: number;
  /** A run ends after this long; the next one follows at once. Default 10 s. */
  maxRunMs?: number;
  /**
   * An entity whose profile has not changed is identified again once its last identify is this old (a
   * profile deleted or merged on PostHog's side heals within it). Default 24 h; 0 identifies every entity
   * once per run, as earlier versions did.
   */
  identifyRefreshMs?: number;
  /**
   * Dead letters older than this are deleted by the worker (they hold personal data: each carries its
   * user's profile snapshot). Checked at most hourly. Default 30 days; 0 keeps them forever.
   */
  deadLetterRetentionMs?: number;
  /** Delays between attempts while PostHog fails, and the worker's pauses. Default 1 s doubling up to 60 s. */
  backoff?: BackoffPolicy;
  /** Cron of the safety-net run. Default every minute. */
  safetyNetCron?: string;
  /**
   * `/healthz` answers 503 once every drain run of this worker has failed for this long (PostgreSQL refusing
   * to settle, a lost connection: not PostHog failing, which the worker waits out). Default 5 minutes.
   */
  unhealthyAfterMs?: number;
}

export interface WorkerSettings extends Omit<DrainSettings, 'observeRequest'> {
  deadLetterRetentionMs: number;
  safetyNetCron: string;
  unhealthyAfterMs: number;
}

/** The CLI flag of each setting, for errors in the CLI's terms. */
export const SETTING_FLAGS: Readonly<Record<string, string>> = {
  schema: '--schema',
  'posthog.host': '--posthog-host',
  batchSize: '--batch-size',
  concurrency: '--concurrency',
  maxAgeMs: '--max-age',
  leaseSeconds: '--lease-seconds',
  'posthog.requestTimeoutMs': '--request-timeout',
  identifyRefreshMs: '--identify-refresh',
  deadLetterRetentionMs: '--dead-letter-retention',
  'backoff.maxMs': '--retry-max-delay',
};

function whole(value: number, field: string, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max)
    throw new OutboxError('invalid', field, `must be a whole number from ${min} to ${max}, got ${value}`);
  return value;
}

function milliseconds(value: number, field: string, options: { zero: string } | { zero?: undefined } = {}): number {
  const least = options.zero === undefined ? 'a positive' : 'zero or a positive';
  if (!Number.isFinite(value) || value < 0 || (value === 0 && options.zero === undefined)) {
    throw new OutboxError('invalid', field, `must be ${least} number of milliseconds${options.zero ? ` (0: ${options.zero})` : ''}, got ${value}`);
  }
  return value;
}

/** Fills in the defaults and checks every rule; throws OutboxError naming the setting at fault. */
export function resolveSettings(input: SettingsInput): Readonly<WorkerSettings> {
  const d = WORKER_DEFAULTS;
  const schema = input.schema ?? d.schema;
  try {
    quoteSchema(schema);
  } catch (error) {
    if (!(error instanceof OutboxError)) throw error;
    throw new OutboxError('invalid', 'schema', error.message.slice(error.field.length + 2), { cause: error });
  }
  // Before anything connects: such a host could never be sent to, and its password would reach the logs.
  refuseUrlCredentials(input.posthog.host, 'posthog.host');
  const requestTimeoutMs = milliseconds(input.posthog.requestTimeoutMs ?? d.requestTimeoutMs, 'posthog.requestTimeoutMs');
  // A lease shorter than a request lets another worker resend rows still in flight.
  const leaseSeconds = input.leaseSeconds ?? Math.max(d.minLeaseSeconds, Math.ceil((requestTimeoutMs * 3) / 1000));
  if (!Number.isInteger(leaseSeconds) || leaseSeconds < 1)
    throw new OutboxError('invalid', 'leaseSeconds', `must be a positive whole number of seconds, got ${leaseSeconds}`);
  if (leaseSeconds * 1000 <= requestTimeoutMs) {
    throw new OutboxError('invalid', 'leaseSeconds', `(${leaseSeconds} s) must be longer than posthog.requestTimeoutMs (${requestTimeoutMs} ms)`);
  }
  const backoff = input.backoff ?? d.backoff;
  milliseconds(backoff.baseMs, 'backoff.baseMs');
  if (milliseconds(backoff.maxMs, 'backoff.maxMs') < backoff.baseMs)
    throw new OutboxError('invalid', 'backoff.maxMs', `(${backoff.maxMs} ms) must be at least backoff.baseMs (${backoff.baseMs} ms)`);
  return Object.freeze({
    schema,
    target: Object.freeze({ ...input.posthog, requestTimeoutMs }),
    batchSize: whole(input.batchSize ?? d.batchSize, 'batchSize', 1, 10_000),
    concurrency: whole(input.concurrency ?? d.concurrency, 'concurrency', 1, 64),
    maxAgeMs: milliseconds(input.maxAgeMs ?? d.maxAgeMs, 'maxAgeMs'),
    leaseSeconds,
    maxRunMs: milliseconds(input.maxRunMs ?? d.maxRunMs, 'maxRunMs'),
    identifyRefreshMs: milliseconds(input.identifyRefreshMs ?? d.identifyRefreshMs, 'identifyRefreshMs', { zero: 'once per drain run' }),
    deadLetterRetentionMs: milliseconds(input.deadLetterRetentionMs ?? d.deadLetterRetentionMs, 'deadLetterRetentionMs', { zero: 'keep forever' }),
    backoff: Object.freeze({ ...backoff }),
    safetyNetCron: input.safetyNetCron ?? d.safetyNetCron,
    unhealthyAfterMs: milliseconds(input.unhealthyAfterMs ?? d.unhealthyAfterMs, 'unhealthyAfterMs'),
  });
}
