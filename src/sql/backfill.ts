/**
 * `backfill-profiles`. `$query` is the operator's own SELECT (from their config), wrapped as a subquery; it
 * must return `id`. Each statement that embeds it takes a parameter, so it always goes through the extended
 * protocol (one statement: a `;` cannot smuggle in a second), and runs in a READ ONLY transaction
 * (`readOnlyQueries`).
 */
import { quoteSchema } from './columns.ts';

/** One backfill at a time per schema (session-level lock, held by the backfill's reserved connection). */
export function tryLockBackfill(): string {
  return `SELECT pg_try_advisory_lock(hashtext('posthog-outbox:backfill:' || $1::text)) AS "locked"`;
}

export function unlockBackfill(): string {
  return `SELECT pg_advisory_unlock(hashtext('posthog-outbox:backfill:' || $1::text))`;
}

/** The Postgres type of the query's `id` column (for keyset paging on its own ordering and index). */
export function profileIdType(query: string): string {
  return `SELECT pg_typeof(q."id")::text AS "type" FROM (${query}) AS q LIMIT $1`;
}

/** How many rows the query returns (`$1`: true; a parameter so that it is one extended-protocol statement). */
export function countProfiles(query: string): string {
  return `SELECT count(*)::int AS "count" FROM (${query}) AS q WHERE $1::boolean`;
}

/** Opens the operator queries' transaction: read only, each statement limited to `$1` milliseconds. */
export function readOnlyQueries(): string {
  return `SELECT set_config('transaction_read_only', 'on', true), set_config('statement_timeout', $1::text, true)`;
}

/** The next `$2` rows after id `$1` (null: from the start), in id order. */
export function profilesPage(query: string, idType: string): string {
  if (!/^[a-z][a-z0-9_ ]*(\([0-9, ]+\))?$/i.test(idType)) throw new Error(`unsupported id type ${JSON.stringify(idType)}`);
  return `SELECT * FROM (${query}) AS q WHERE $1::text IS NULL OR q."id" > $1::text::${idType} ORDER BY q."id" LIMIT $2`;
}

export function backfillState(schema: string): string {
  return `SELECT "query_hash", "last_id", "enqueued", "started_at", "finished_at" FROM ${quoteSchema(schema)}."backfills" WHERE "entity" = $1`;
}

/** Starts a new pass for entity `$1` with query hash `$2`. */
export function startBackfill(schema: string): string {
  return `INSERT INTO ${quoteSchema(schema)}."backfills" ("entity", "query_hash") VALUES ($1, $2)
ON CONFLICT ("entity") DO UPDATE SET "query_hash" = EXCLUDED."query_hash", "last_id" = NULL, "enqueued" = 0, "started_at" = now(), "finished_at" = NULL`;
}

/** Records a page: position `$2`, `$3` more enqueued (in the transaction that enqueued them). */
export function advanceBackfill(schema: string): string {
  return `UPDATE ${quoteSchema(schema)}."backfills" SET "last_id" = $2, "enqueued" = "enqueued" + $3 WHERE "entity" = $1`;
}

export function finishBackfill(schema: string): string {
  return `UPDATE ${quoteSchema(schema)}."backfills" SET "finished_at" = now() WHERE "entity" = $1`;
}
