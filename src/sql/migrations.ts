/** `migrate`: the journal of applied migrations and the locks that keep concurrent runs apart (the migrations themselves are in migrations/). */
import { quoteSchema } from './columns.ts';

/** Serialises concurrent `migrate` runs on the same schema (held until the transaction ends). */
export function lockMigrations(): string {
  return `SELECT pg_advisory_xact_lock(hashtext('posthog-outbox:migrate:' || $1::text))`;
}

/** The calling transaction's statements wait at most `$1` milliseconds for a lock (then fail with 55P03). */
export function setLockTimeout(): string {
  return `SELECT set_config('lock_timeout', $1::text, true)`;
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
