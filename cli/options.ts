/** Option parsers shared by the subcommands: bad values fail with commander's one-line usage error. */
import { InvalidArgumentError, Option } from 'commander';
import { checkDatabaseUrl, refuseUrlCredentials } from '../src/config.ts';
import { OutboxError } from '../src/errors.ts';
import { redactSecrets } from '../src/redact.ts';

export function integer(min: number, max: number) {
  return (value: string): number => {
    if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}.`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`must be a whole number from ${min} to ${max}.`);
    return n;
  };
}

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A duration such as `7d`, `36h`, `90m` or `600s`, in milliseconds, between `min` and `max`. */
export function duration(min: number, max: number) {
  return (value: string): number => {
    const match = /^(\d+)\s*([smhd])$/.exec(value.trim());
    const ms = value.trim() === '0' ? 0 : match ? Number(match[1]) * UNITS[match[2]!]! : NaN;
    if (!(ms >= min && ms <= max)) {
      throw new InvalidArgumentError(
        `must be a duration with a unit (s, m, h, d), e.g. 7d or 36h, from ${min === 0 ? '0' : `${min / 1000} s`} to ${max / 86_400_000} days.`,
      );
    }
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

/** The session URL: DIRECT_DATABASE_URL when given, else DATABASE_URL; checked, with the name it came from. */
export function sessionUrl(flags: { databaseUrl?: string; directUrl?: string }): { url: string; field: string } {
  if (flags.directUrl !== undefined && flags.directUrl.trim() !== '')
    return { url: checkDatabaseUrl(flags.directUrl, 'DIRECT_DATABASE_URL'), field: 'DIRECT_DATABASE_URL' };
  return { url: checkDatabaseUrl(flags.databaseUrl), field: 'DATABASE_URL' };
}

export function schemaOption(): Option {
  return new Option('--schema <name>', 'Postgres schema of the outbox tables').env('POSTHOG_OUTBOX_SCHEMA').default('posthog_outbox');
}

/** A PostHog host: an http(s) URL without credentials, returned without trailing slashes. */
export function checkHost(value: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    // Shown with any credentials masked: a host that is refused is still someone's secret.
    throw new OutboxError('invalid', 'POSTHOG_HOST', `is not a URL: ${JSON.stringify(redactSecrets(value))}; expected e.g. https://us.i.posthog.com`);
  }
  refuseUrlCredentials(value, 'POSTHOG_HOST');
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new OutboxError('invalid', 'POSTHOG_HOST', `must be an http(s) URL, got ${u.protocol}//`);
  return value.replace(/\/+$/, '');
}
