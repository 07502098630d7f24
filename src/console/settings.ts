/**
 * The console's options checked and their defaults filled in (the declaration: settings-schema.ts). Errors
 * are OutboxError naming the option (`token`, `basePath`), never echoing a secret; the CLI names the flag.
 */
import type postgres from 'postgres';
import { checkDatabaseUrl, DEFAULT_SCHEMA } from '../connection/config.ts';
import { formatDuration } from '../../worker/settings/duration.ts';
import { OutboxError } from '../errors/errors.ts';
import { quoteSchema } from '../outbox/columns.ts';
import { CONSOLE_SETTINGS, MIN_TOKEN_LENGTH } from './settings-schema.ts';

/** The subset of a pino logger the console uses: one line per action (and per refused one). */
export interface ConsoleLogger {
  info(object: object, message?: string): void;
  warn(object: object, message?: string): void;
  error(object: object, message?: string): void;
}

export interface ConsoleOptions {
  /** The database: the console opens a small pool of its own (closed by `close()`). Or give `sql`. */
  databaseUrl?: string;
  /** An application's own postgres.js client, used as it is and left open. */
  sql?: postgres.Sql;
  /** The outbox's schema (default `posthog_outbox`). */
  schema?: string;
  /** The path the handler is mounted under, e.g. `/admin/outbox` (default: none). */
  basePath?: string;
  /** A secret every request must carry (HTTP Basic password or Bearer); default none (the application's own auth guards the route). */
  token?: string;
  /** Replaying, discarding and forgetting from the page (default false: read only). */
  allowActions?: boolean;
  /** How often the page refreshes (default 5 s). */
  refreshMs?: number;
  /** How often the delivery counters are read (default 10 s). */
  sampleIntervalMs?: number;
  /** Host names (without port) a request may name in its Host header; default any. Guards a loopback console against DNS rebinding. */
  allowedHosts?: readonly string[];
  /** Where actions are logged (default: JSON lines on stderr). */
  logger?: ConsoleLogger;
}

export interface ConsoleSettings {
  schema: string;
  basePath: string;
  token: string | undefined;
  allowActions: boolean;
  refreshMs: number;
  sampleIntervalMs: number;
  allowedHosts: ReadonlySet<string> | undefined;
}

const PATH = /^(\/[A-Za-z0-9._~-]+)+$/;

function duration(name: 'refreshMs' | 'sampleIntervalMs', value: number | undefined): number {
  const { min, max, default: byDefault } = CONSOLE_SETTINGS[name];
  const ms = value ?? byDefault;
  if (!Number.isSafeInteger(ms) || ms < min || ms > max)
    throw new OutboxError('invalid', name, `must be a whole number of milliseconds from ${formatDuration(min)} to ${formatDuration(max)}, got ${ms}`);
  return ms;
}

/** The options checked, defaults filled in; OutboxError on the first bad one. (The database is checked by `createConsoleHandler`.) */
export function resolveConsoleSettings(options: ConsoleOptions): ConsoleSettings {
  const schema = options.schema ?? DEFAULT_SCHEMA;
  quoteSchema(schema);
  let basePath = options.basePath ?? '';
  if (basePath.endsWith('/')) basePath = basePath.slice(0, -1);
  if (basePath !== '' && !PATH.test(basePath))
    throw new OutboxError('invalid', 'basePath', 'must be a path such as /admin/outbox: segments of letters, digits and . _ ~ - only');
  const token = options.token === undefined || options.token === '' ? undefined : options.token;
  if (token !== undefined && (typeof token !== 'string' || token.length < MIN_TOKEN_LENGTH))
    throw new OutboxError('invalid', 'token', `must be at least ${MIN_TOKEN_LENGTH} characters (a random one: openssl rand -hex 24)`);
  if (token !== undefined && /[\s\p{Cc}]/u.test(token)) throw new OutboxError('invalid', 'token', 'must not contain spaces or control characters');
  return {
    schema,
    basePath,
    token,
    allowActions: options.allowActions === true,
    refreshMs: duration('refreshMs', options.refreshMs),
    sampleIntervalMs: duration('sampleIntervalMs', options.sampleIntervalMs),
    allowedHosts: options.allowedHosts ? new Set(options.allowedHosts.map((h) => h.toLowerCase())) : undefined,
  };
}

/** `databaseUrl` or `sql`, exactly one. */
export function checkDatabase(options: ConsoleOptions): { url: string } | { sql: postgres.Sql } {
  if (options.sql !== undefined && options.databaseUrl !== undefined) throw new OutboxError('invalid', 'databaseUrl', 'give databaseUrl or sql, not both');
  if (options.sql !== undefined) return { sql: options.sql };
  return { url: checkDatabaseUrl(options.databaseUrl) };
}
