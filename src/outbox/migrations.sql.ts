/** `migrate`: the journal of applied migrations and the locks that keep concurrent runs apart (the migrations themselves are in migrations/). */
import { type Statement, statement } from '../sql/statement.ts';
import { quoteSchema } from './columns.ts';

/** Serialises concurrent `migrate` runs on the same schema (held until the transaction ends). */
export function lockMigrations(): Statement<{ schema: string }> {
  return statement(`SELECT pg_advisory_xact_lock(hashtext('posthog-outbox:migrate:' || :schema::text))`);
}

/** The calling transaction's statements wait at most `:lockTimeoutMs` milliseconds for a lock (then fail with 55P03). */
export function setLockTimeout(): Statement<{ lockTimeoutMs: number }> {
  return statement(`SELECT set_config('lock_timeout', :lockTimeoutMs::text, true)`);
}

/** Whether the migrations journal of `:schema` exists yet. */
export function journalExists(): Statement<{ schema: string }, { exists: boolean }> {
  return statement(`SELECT to_regclass(quote_ident(:schema::text) || '."__migrations"') IS NOT NULL AS "exists"`);
}

export function createJournal(schema: string): Statement {
  return statement(
    `CREATE TABLE IF NOT EXISTS ${quoteSchema(schema)}."__migrations" ("created_at" bigint PRIMARY KEY, "hash" text NOT NULL, "applied_at" timestamptz NOT NULL DEFAULT now())`,
  );
}

export function appliedMigrations(schema: string): Statement<Record<never, never>, { created_at: string; hash: string }> {
  return statement(`SELECT "created_at", "hash" FROM ${quoteSchema(schema)}."__migrations" ORDER BY "created_at"`);
}

export function insertJournalEntry(schema: string): Statement<{ hash: string; createdAt: number }> {
  return statement(`INSERT INTO ${quoteSchema(schema)}."__migrations" ("hash", "created_at") VALUES (:hash, :createdAt)`);
}
