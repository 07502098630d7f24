/**
 * The operator console's settings, declared once, as the worker's are (worker/settings/schema.ts): for each its
 * name in `ConsoleOptions`, its flag and environment variable on `posthog-outbox console`, its kind, range,
 * default and what it does. The command's options (cli/console.ts), the checks (src/console/settings.ts) and
 * the console's table in docs/settings.md (`npm run docs:settings`) come from here. Pure.
 */

/** `switch`: a flag without a value, off unless given. The other kinds are the worker's (`SettingKind`). */
export type ConsoleSettingKind = 'host' | 'port' | 'secret' | 'path' | 'duration' | 'switch';

export interface ConsoleSettingSpec {
  readonly kind: ConsoleSettingKind;
  /** None: a library option only. */
  readonly flag?: `--${string}`;
  /** None: the flag only (a switch that enables changes is not read from the environment). */
  readonly env?: string;
  readonly min?: number;
  readonly max?: number;
  readonly default?: number | string;
  readonly defaultText?: string;
  readonly description: string;
}

/** The shortest token accepted: a guessable one would be no protection. */
export const MIN_TOKEN_LENGTH = 16;

export const CONSOLE_SETTINGS = {
  host: {
    kind: 'host',
    flag: '--host',
    env: 'POSTHOG_OUTBOX_CONSOLE_HOST',
    default: '127.0.0.1',
    description: 'interface the console listens on; any address beyond loopback needs a token',
  },
  port: {
    kind: 'port',
    flag: '--port',
    env: 'POSTHOG_OUTBOX_CONSOLE_PORT',
    min: 0,
    max: 65_535,
    default: 9465,
    description: 'port the console listens on (0: any free port)',
  },
  token: {
    kind: 'secret',
    flag: '--token',
    env: 'POSTHOG_OUTBOX_CONSOLE_TOKEN',
    min: MIN_TOKEN_LENGTH,
    defaultText: 'none: only loopback',
    description: `a secret of at least ${MIN_TOKEN_LENGTH} characters every request must carry (the password of HTTP Basic authentication, any user name, or \`Authorization: Bearer <token>\`); required to listen beyond loopback. Prefer the environment variable to the flag`,
  },
  allowActions: {
    kind: 'switch',
    flag: '--allow-actions',
    defaultText: 'off: read only',
    description: 'let the page replay and discard dead letters and forget a user, organization or automation (each confirmed, logged)',
  },
  basePath: {
    kind: 'path',
    flag: '--base-path',
    env: 'POSTHOG_OUTBOX_CONSOLE_BASE_PATH',
    default: '',
    defaultText: 'none: served at /',
    description: 'path the console is served under, e.g. `/admin/outbox` behind a reverse proxy that passes the path on',
  },
  refreshMs: {
    kind: 'duration',
    min: 1_000,
    max: 600_000,
    default: 5_000,
    description: 'how often the page asks for fresh figures',
  },
  sampleIntervalMs: {
    kind: 'duration',
    min: 1_000,
    max: 600_000,
    default: 10_000,
    description: "how often the console reads PostgreSQL's counters of the outbox tables for its delivery chart",
  },
} as const satisfies Record<string, ConsoleSettingSpec>;

export type ConsoleSettingName = keyof typeof CONSOLE_SETTINGS;
