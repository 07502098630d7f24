/**
 * Connection settings read from the environment or flags, checked up front so a process refuses to start
 * with a clear message. Secrets never appear in messages: URLs are shown with the password masked.
 */
import postgres from 'postgres';
import { OutboxError } from '../errors/errors.ts';
import { redactSecrets } from '../errors/redact.ts';
import { query } from '../sql/statement.ts';
import { ping } from './connection.sql.ts';

/** The Postgres schema the outbox tables live in unless told otherwise. */
export const DEFAULT_SCHEMA = 'posthog_outbox';

/** `postgres://user:***@host:port/db`: safe to print. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable URL>';
  }
}

/**
 * Refuses an http(s) URL for `field` (the PostHog host) that carries a user name or password: fetch refuses
 * such a URL, so no request could ever go out, and the password would be printed and stored with every
 * failure. The message shows the URL with its credentials masked. An unparseable URL is checked by its text.
 */
export function refuseUrlCredentials(value: string, field: string): void {
  let credentials: boolean;
  try {
    const u = new URL(value);
    credentials = u.username !== '' || u.password !== '';
  } catch {
    credentials = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(value.trim());
  }
  if (credentials) {
    throw new OutboxError(
      'invalid',
      field,
      `must not contain a user name or password (${redactSecrets(value)}): fetch refuses credentials in URLs, so no request could go out (PostHog authenticates with the project API key); give the host alone, e.g. https://us.i.posthog.com`,
    );
  }
}

/** Checks a PostgreSQL connection URL and returns it; throws OutboxError naming `field` (never echoing the password). */
export function checkDatabaseUrl(value: string | undefined, field = 'databaseUrl'): string {
  if (value === undefined || value.trim() === '') throw new OutboxError('required', field, 'is not set; give a postgres:// connection URL');
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new OutboxError('invalid', field, 'is not a URL; expected postgres://user:password@host:5432/database');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new OutboxError('invalid', field, `must start with postgres:// or postgresql://, got ${u.protocol}//`);
  }
  if (!u.hostname) throw new OutboxError('invalid', field, 'has no host');
  return value;
}

/**
 * Opens a postgres.js client on the database at `url` and checks that it answers (the CLI's operator commands,
 * `migrate`, `withConnection`); throws an Error whose message names the server (password masked) and the cause.
 */
export async function connectDatabase(url: string, options: postgres.Options<Record<string, postgres.PostgresType>> = {}): Promise<postgres.Sql> {
  const sql = postgres(url, { connect_timeout: 10, onnotice: () => {}, ...options });
  try {
    // Extended protocol, prepared, as the tagged queries that follow on this client.
    await query(sql, ping(), {}, { prepare: true });
    return sql;
  } catch (error) {
    await sql.end({ timeout: 1 }).catch(() => undefined);
    const cause = error as { code?: string; message?: string };
    throw new Error(`cannot reach the database at ${redactUrl(url)}: ${cause.code ?? ''}${cause.code ? ' ' : ''}${cause.message ?? String(error)}`.trim());
  }
}
