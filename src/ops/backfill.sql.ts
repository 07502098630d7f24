/**
 * `backfill-profiles`. `$query` is the operator's own SELECT (from their config), wrapped as a subquery; it
 * must return `id`. Each statement that embeds it takes a parameter, so it always goes through the extended
 * protocol (one statement: a `;` cannot smuggle in a second), and runs in a READ ONLY transaction
 * (`readOnlyQueries`).
 */
import { quoteSchema } from '../outbox/columns.ts';
import { type Statement, statement } from '../sql/statement.ts';

/** One backfill at a time per schema (session-level lock, held by the backfill's reserved connection). */
export function tryLockBackfill(): Statement<{ schema: string }, { locked: boolean }> {
  return statement(`SELECT pg_try_advisory_lock(hashtext('posthog-outbox:backfill:' || :schema::text)) AS "locked"`);
}

export function unlockBackfill(): Statement<{ schema: string }> {
  return statement(`SELECT pg_advisory_unlock(hashtext('posthog-outbox:backfill:' || :schema::text))`);
}

/** The Postgres type of the query's `id` column (for keyset paging on its own ordering and index). */
export function profileIdType(query: string): Statement<{ limit: number }, { type: string }> {
  return statement(`SELECT pg_typeof(q."id")::text AS "type" FROM (${query}) AS q LIMIT :limit`);
}

/** How many rows the query returns (`:all`: true; a parameter so that it is one extended-protocol statement). */
export function countProfiles(query: string): Statement<{ all: boolean }, { count: number }> {
  return statement(`SELECT count(*)::int AS "count" FROM (${query}) AS q WHERE :all::boolean`);
}

/** Opens the operator queries' transaction: read only, each statement limited to `:timeoutMs` milliseconds. */
export function readOnlyQueries(): Statement<{ timeoutMs: number }> {
  return statement(`SELECT set_config('transaction_read_only', 'on', true), set_config('statement_timeout', :timeoutMs::text, true)`);
}

/** The next `:limit` rows after id `:after` (null: from the start), in id order. */
export function profilesPage(query: string, idType: string): Statement<{ after: string | null; limit: number }> {
  if (!/^[a-z][a-z0-9_ ]*(\([0-9, ]+\))?$/i.test(idType)) throw new Error(`unsupported id type ${JSON.stringify(idType)}`);
  return statement(`SELECT * FROM (${query}) AS q WHERE :after::text IS NULL OR q."id" > :after::text::${idType} ORDER BY q."id" LIMIT :limit`);
}

export function backfillState(
  schema: string,
): Statement<{ entity: string }, { query_hash: string; last_id: string | null; enqueued: number; started_at: Date; finished_at: Date | null }> {
  return statement(`SELECT "query_hash", "last_id", "enqueued", "started_at", "finished_at" FROM ${quoteSchema(schema)}."backfills" WHERE "entity" = :entity`);
}

/** Starts the backfill of `:entity` over again, with query hash `:queryHash`. */
export function startBackfill(schema: string): Statement<{ entity: string; queryHash: string }> {
  return statement(`INSERT INTO ${quoteSchema(schema)}."backfills" ("entity", "query_hash") VALUES (:entity, :queryHash)
ON CONFLICT ("entity") DO UPDATE SET "query_hash" = EXCLUDED."query_hash", "last_id" = NULL, "enqueued" = 0, "started_at" = now(), "finished_at" = NULL`);
}

/** Records a page: position `:lastId`, `:sent` more enqueued (in the transaction that enqueued them). */
export function advanceBackfill(schema: string): Statement<{ entity: string; lastId: string; sent: number }> {
  return statement(`UPDATE ${quoteSchema(schema)}."backfills" SET "last_id" = :lastId, "enqueued" = "enqueued" + :sent WHERE "entity" = :entity`);
}

export function finishBackfill(schema: string): Statement<{ entity: string }> {
  return statement(`UPDATE ${quoteSchema(schema)}."backfills" SET "finished_at" = now() WHERE "entity" = :entity`);
}
