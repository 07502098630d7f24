/** Option parsers shared by the subcommands: bad values fail with commander's one-line usage error. */
import { InvalidArgumentError, Option } from 'commander';
import { checkDatabaseUrl } from '../src/connection/config.ts';
import { DURATION_UNITS, formatDuration, parseDuration } from '../worker/settings/duration.ts';
import { settingOption } from './settings.ts';

export function integer(min: number, max: number) {
  return (value: string): number => {
    if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}.`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}.`);
    return n;
  };
}

/** A duration such as `7d`, `36h`, `90m` or `600s` (worker/settings/duration.ts), in milliseconds, between `min` and `max`. */
export function duration(min: number, max: number) {
  return (value: string): number => {
    const ms = parseDuration(value);
    if (ms === undefined || ms < min || ms > max)
      throw new InvalidArgumentError(
        `must be a duration with a unit (${DURATION_UNITS}), e.g. 30s or 7d, from ${formatDuration(min)} to ${formatDuration(max)}.`,
      );
    return ms;
  };
}

export function databaseUrlOption(): Option {
  return new Option('--database-url <url>', 'PostgreSQL connection URL').env('DATABASE_URL');
}

/** What needs a session of its own (the worker, migrate, backfill-profiles) connects here; default DATABASE_URL. */
export function directUrlOption(): Option {
  return new Option(
    '--direct-url <url>',
    'PostgreSQL URL with a session of its own (a direct connection or a session-mode pooler), when DATABASE_URL goes through a transaction-mode pooler; default: --database-url',
  ).env('DIRECT_DATABASE_URL');
}

/** The session URL: DIRECT_DATABASE_URL when given, else DATABASE_URL; checked, with the field it came from. */
export function sessionUrl(flags: { databaseUrl?: string; directUrl?: string }): { url: string; field: 'databaseUrl' | 'directUrl' } {
  if (flags.directUrl !== undefined && flags.directUrl.trim() !== '') return { url: checkDatabaseUrl(flags.directUrl, 'directUrl'), field: 'directUrl' };
  return { url: checkDatabaseUrl(flags.databaseUrl, 'databaseUrl'), field: 'databaseUrl' };
}

/** `--schema`, as the worker's setting declares it, its default filled in for the commands that read it directly. */
export function schemaOption(): Option {
  return settingOption('schema', { valued: true });
}
