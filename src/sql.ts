/**
 * Every SQL statement the library and the worker run, as plain functions of the schema name, so they can
 * be read and reviewed together. Parameters are positional (`$1`, ...); callers pass them alongside.
 */
import { OutboxError } from './errors.ts';

const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

/** Validates a Postgres schema name and returns it quoted. */
export function quoteSchema(schema: string): string {
  if (typeof schema !== 'string' || !IDENTIFIER.test(schema)) {
    throw new OutboxError('invalid', 'schema', `must match ${IDENTIFIER} (lower-case letters, digits, underscores), got ${JSON.stringify(schema)}`);
  }
  return `"${schema}"`;
}

/** Columns written by `record()`, with their Postgres types, in the order of the JSON rows. */
export const RECORD_COLUMNS = [
  ['uuid', 'uuid'],
  ['event', 'text'],
  ['distinct_id', 'text'],
  ['properties', 'jsonb'],
  ['groups', 'jsonb'],
  ['timestamp', 'timestamptz'],
  ['user_id', 'text'],
  ['user_profile', 'jsonb'],
  ['automation_id', 'text'],
  ['automation_profile', 'jsonb'],
  ['organization_id', 'text'],
  ['organization_profile', 'jsonb'],
] as const;

export type RecordColumn = (typeof RECORD_COLUMNS)[number][0];

/**
 * Inserts any number of events in one statement (one round trip): `$1` is a JSON array of objects keyed by
 * `RECORD_COLUMNS`.
 */
export function insertEvents(schema: string): string {
  const columns = RECORD_COLUMNS.map(([name]) => `"${name}"`).join(', ');
  const types = RECORD_COLUMNS.map(([name, type]) => `"${name}" ${type}`).join(', ');
  return `INSERT INTO ${quoteSchema(schema)}."outbox" (${columns}) SELECT ${columns} FROM json_to_recordset($1::json) AS r(${types})`;
}

// --- migrations ---------------------------------------------------------------------------------------

/** Serialises concurrent `migrate` runs on the same schema (held until the transaction ends). */
export function lockMigrations(): string {
  return `SELECT pg_advisory_xact_lock(hashtext('posthog-outbox:migrate:' || $1::text))`;
}

/** Whether the migrations journal exists yet (`$1` = schema name). */
export function journalExists(): string {
  return `SELECT to_regclass(quote_ident($1::text) || '."__migrations"') IS NOT NULL AS "exists"`;
}

export function createJournal(schema: string): string {
  return `CREATE TABLE IF NOT EXISTS ${quoteSchema(schema)}."__migrations" ("created_at" bigint PRIMARY KEY, "hash" text NOT NULL, "applied_at" timestamptz NOT NULL DEFAULT now())`;
}

export function appliedMigrations(schema: string): string {
  return `SELECT "created_at", "hash" FROM ${quoteSchema(schema)}."__migrations" ORDER BY "created_at"`;
}

export function insertJournalEntry(schema: string): string {
  return `INSERT INTO ${quoteSchema(schema)}."__migrations" ("hash", "created_at") VALUES ($1, $2)`;
}
