/**
 * The worker's settings, declared once: for each its name in `WorkerOptions`, its CLI flag and environment
 * variable, its kind (and so its unit), its range, its default and what it does. Everything else is derived
 * from it: `resolveSettings` (worker/settings/settings.ts: the defaults and the rules, for `startWorker` and the CLI),
 * the options of `posthog-outbox worker` (cli/settings.ts) and docs/settings.md (`npm run docs:settings`,
 * dev/settings-doc.ts; test/worker/settings-doc.test.ts fails when the committed page is not what this gives).
 *
 * Units: one per kind of quantity. A duration is milliseconds in the library's API (options named `...Ms`)
 * and a duration string on the command line and in the environment (`500ms`, `30s`, `10m`, `36h`, `7d`;
 * `0` alone), parsed by worker/settings/duration.ts, for every duration flag. A bare number is refused there, also for
 * the flags that took milliseconds before 0.1.0 (`--request-timeout`, `--retry-max-delay`,
 * `--shutdown-timeout`): `10000` could mean either unit. A count is a whole number. Pure: no I/O.
 */
import { DEFAULT_SCHEMA } from '../../src/connection/config.ts';
import { formatDuration } from './duration.ts';
import { DEFAULT_IDENTIFY_REFRESH_MS } from '../../src/identify/events.ts';
import { DEFAULT_BACKOFF } from '../settle/backoff.ts';

/**
 * What a setting's value is. `count`, `port`: a whole number; `duration`: milliseconds (a duration string
 * on the command line); `secret`: text never shown; `url`, `name`, `host`, `cron`: text; `choice`: one of
 * the words in `choices`.
 */
export type SettingKind = 'count' | 'port' | 'duration' | 'secret' | 'url' | 'name' | 'host' | 'cron' | 'choice';

export interface SettingSpec {
  readonly kind: SettingKind;
  /** `--batch-size`; none: a library option only. */
  readonly flag?: `--${string}`;
  /** The environment variable the CLI reads it from when the flag is not given. */
  readonly env?: string;
  /** Inclusive bounds of a number (milliseconds for a duration). */
  readonly min?: number;
  readonly max?: number;
  /** A `choice`: the values it takes. */
  readonly choices?: readonly string[];
  /** 0 is accepted below `min`, meaning this. */
  readonly zero?: string;
  /** The value when unset; none: required (`required`) or off. */
  readonly default?: number | string;
  /** The default in words, when it is not one fixed value. */
  readonly defaultText?: string;
  readonly required?: true;
  readonly description: string;
}

const DAY = 86_400_000;

/**
 * Every setting, keyed by its name in `WorkerOptions` (a dotted path inside an object:
 * `posthog.requestTimeoutMs` is `{ posthog: { requestTimeoutMs } }`), in the order the CLI's help lists them.
 */
export const SETTINGS = {
  'posthog.apiKey': {
    kind: 'secret',
    flag: '--posthog-api-key',
    env: 'POSTHOG_API_KEY',
    required: true,
    description: 'PostHog project API key (prefer the environment variable to the flag)',
  },
  'posthog.host': {
    kind: 'url',
    flag: '--posthog-host',
    env: 'POSTHOG_HOST',
    default: 'https://us.i.posthog.com',
    description: 'PostHog host: an http(s) URL without credentials',
  },
  'posthog.captureMode': {
    kind: 'choice',
    flag: '--capture-mode',
    // posthog-node's own switch: the worker reads it as this setting and builds its clients in the mode chosen.
    env: 'POSTHOG_CAPTURE_MODE',
    choices: ['v0', 'v1'],
    default: 'v0',
    description:
      "PostHog's capture protocol: v0 sends each batch to /batch/ and reads one answer per request; v1 sends to Capture V1 (/i/v1/analytics/events) and reads PostHog's verdict on each event (ok, warning, drop: dead-lettered with PostHog's reason, retry: that event alone scheduled again). startWorker also reads the variable when the option is not given",
  },
  schema: {
    kind: 'name',
    flag: '--schema',
    env: 'POSTHOG_OUTBOX_SCHEMA',
    default: DEFAULT_SCHEMA,
    description: 'Postgres schema of the outbox tables',
  },
  batchSize: {
    kind: 'count',
    flag: '--batch-size',
    env: 'POSTHOG_OUTBOX_BATCH_SIZE',
    min: 1,
    max: 10_000,
    default: 1000,
    description: 'events per PostHog request (and per claim)',
  },
  concurrency: {
    kind: 'count',
    flag: '--concurrency',
    env: 'POSTHOG_OUTBOX_CONCURRENCY',
    min: 1,
    max: 64,
    default: 2,
    description: 'batches in flight at once in one process',
  },
  maxAgeMs: {
    kind: 'duration',
    flag: '--max-age',
    env: 'POSTHOG_OUTBOX_MAX_AGE',
    min: 60_000,
    max: 3_650 * DAY,
    default: 7 * DAY,
    description:
      'an event still undelivered this long after it was recorded is dead-lettered instead of sent; nothing else about time dead-letters an event (PostHog failures are retried for as long as they last)',
  },
  historicalAfterMs: {
    kind: 'duration',
    flag: '--historical-after',
    env: 'POSTHOG_OUTBOX_HISTORICAL_AFTER',
    min: 60_000,
    max: 3_650 * DAY,
    zero: 'send every event as live',
    default: 3_600_000,
    description:
      'an event whose timestamp is older than this when it is sent goes in requests of its own flagged historical_migration (PostHog ingests them in order, without its spike detection), after the live events of its batch; a pass claiming a backlog of such rows also claims the rows recorded since in a lane of their own, so that they are not held up behind it',
  },
  'posthog.requestTimeoutMs': {
    kind: 'duration',
    flag: '--request-timeout',
    env: 'POSTHOG_OUTBOX_REQUEST_TIMEOUT',
    min: 100,
    max: 600_000,
    default: 10_000,
    description: 'timeout of one PostHog request',
  },
  leaseMs: {
    kind: 'duration',
    flag: '--lease',
    env: 'POSTHOG_OUTBOX_LEASE',
    min: 1_000,
    max: DAY,
    default: 60_000,
    defaultText: '1m, or three request timeouts when that is longer',
    description:
      'how long a hung worker may hold the rows it is sending (its batch transaction idle while a request is out) before PostgreSQL ends its session and frees them; a crashed worker frees them at once. Must be longer than the request timeout',
  },
  'backoff.maxMs': {
    kind: 'duration',
    flag: '--retry-max-delay',
    env: 'POSTHOG_OUTBOX_RETRY_MAX_DELAY',
    min: 10,
    max: 3_600_000,
    default: DEFAULT_BACKOFF.maxMs,
    description: 'longest wait between attempts while PostHog fails (exponential backoff with jitter, doubling from the first retry delay)',
  },
  'backoff.baseMs': {
    kind: 'duration',
    min: 1,
    max: 3_600_000,
    default: DEFAULT_BACKOFF.baseMs,
    defaultText: '1s, or the longest wait when that is shorter',
    description: 'delay scale of the first retry while PostHog fails',
  },
  identifyRefreshMs: {
    kind: 'duration',
    flag: '--identify-refresh',
    env: 'POSTHOG_OUTBOX_IDENTIFY_REFRESH',
    min: 1_000,
    max: 365 * DAY,
    zero: 'identify every entity once per drain pass',
    default: DEFAULT_IDENTIFY_REFRESH_MS,
    description:
      "an unchanged user, persona or organization is identified again once its last identify is this old (a profile deleted or merged on PostHog's side heals within it)",
  },
  deadLetterRetentionMs: {
    kind: 'duration',
    flag: '--dead-letter-retention',
    env: 'POSTHOG_OUTBOX_DEAD_LETTER_RETENTION',
    min: 60_000,
    max: 3_650 * DAY,
    zero: 'keep them forever',
    default: 30 * DAY,
    description: 'dead letters older than this are deleted, checked at most hourly (they hold personal data: each carries its profile snapshot)',
  },
  shutdownTimeoutMs: {
    kind: 'duration',
    flag: '--shutdown-timeout',
    env: 'POSTHOG_OUTBOX_SHUTDOWN_TIMEOUT',
    min: 0,
    max: 600_000,
    default: 20_000,
    description: "how long a stop waits for the batches in flight before it gives their rows back (`stop()`'s default; 0: at once)",
  },
  'metrics.port': {
    kind: 'port',
    flag: '--metrics-port',
    env: 'POSTHOG_OUTBOX_METRICS_PORT',
    min: 0,
    max: 65_535,
    defaultText: 'not served',
    description: 'serve /healthz and /metrics (Prometheus) on this port (0: any free port)',
  },
  'metrics.host': {
    kind: 'host',
    flag: '--metrics-host',
    env: 'POSTHOG_OUTBOX_METRICS_HOST',
    default: '0.0.0.0',
    description: 'interface /healthz and /metrics listen on',
  },
  maxPassMs: {
    kind: 'duration',
    min: 10,
    max: 3_600_000,
    default: 10_000,
    description: 'a drain pass stops claiming after this long; the next one follows at once while rows are due',
  },
  unhealthyAfterMs: {
    kind: 'duration',
    min: 10,
    max: DAY,
    default: 5 * 60_000,
    description:
      '/healthz answers 503 once every drain pass has failed this long (PostgreSQL refusing to settle, a lost connection; not PostHog failing, which the worker waits out)',
  },
  safetyNetCron: {
    kind: 'cron',
    default: '* * * * *',
    description: 'cron of the safety-net drain pass',
  },
} as const satisfies Record<string, SettingSpec>;

export type SettingName = keyof typeof SETTINGS;

/** A setting's default, as declared. */
export function defaultOf<N extends SettingName>(name: N): (typeof SETTINGS)[N] extends { default: infer D } ? D : undefined {
  return (SETTINGS[name] as SettingSpec).default as never;
}

/** A setting's default as the command line and the docs write it: `7d`, `1000`, or the words declared. */
export function defaultText(spec: SettingSpec): string | undefined {
  if (spec.defaultText !== undefined) return spec.defaultText;
  if (spec.default === undefined) return undefined;
  return spec.kind === 'duration' ? formatDuration(spec.default as number) : String(spec.default);
}

/** What `name` must be, e.g. `a whole number from 1 to 10000`, `0 (keep them forever) or a duration from 1m to 3650d`, `one of v0, v1`. */
export function expected(name: SettingName): string {
  const spec: SettingSpec = SETTINGS[name];
  if (spec.kind === 'choice') return `one of ${spec.choices!.join(', ')}`;
  const zero = spec.zero ? `0 (${spec.zero}) or ` : '';
  if (spec.kind === 'duration') return `${zero}a duration from ${formatDuration(spec.min!)} to ${formatDuration(spec.max!)}`;
  return `${zero}a whole number from ${spec.min} to ${spec.max}`;
}
