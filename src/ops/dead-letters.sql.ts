/** Dead letters: listing, retrying (all at once or in bounded steps), purging, and the worker's retention. */
import { EVENT_COLUMNS, quoteSchema, recordColumnList } from '../outbox/columns.ts';
import { type Statement, statement } from '../sql/statement.ts';

/** A dead letter's row as the listings read it. */
export interface DeadLetterRow {
  uuid: string;
  event: string;
  distinct_id: string;
  reason: string;
  attempts: number;
  died_at: Date;
}

/** Up to `:limit` dead letters, newest first. */
export function listDeadLetters(schema: string): Statement<{ limit: number }, DeadLetterRow> {
  return statement(`SELECT "uuid", "event", "distinct_id", "reason", "attempts", "died_at" FROM ${quoteSchema(schema)}."dead_letters"
ORDER BY "died_at" DESC, "uuid" LIMIT :limit`);
}

/**
 * Moves dead letters back into the outbox with their attempts reset, due now: those with uuid in `:uuids`, or
 * all of them when `:uuids` is null. Keeps the uuid and timestamp, so PostHog can still drop a duplicate.
 */
export function retryDeadLetters(schema: string): Statement<{ uuids: readonly string[] | null }, { uuid: string }> {
  const s = quoteSchema(schema);
  return statement(`WITH revived AS (
  DELETE FROM ${s}."dead_letters" WHERE :uuids::uuid[] IS NULL OR "uuid" = ANY(:uuids::uuid[])
  RETURNING *
)
INSERT INTO ${s}."outbox" (${EVENT_COLUMNS}, "next_attempt_at")
SELECT ${recordColumnList()}, 0, NULL, "created_at", now()
FROM revived
ON CONFLICT ("uuid") DO NOTHING
RETURNING "uuid"`);
}

/**
 * Deletes dead letters that died more than `:retentionMs` milliseconds ago, at most `:limit` of them (a bounded statement:
 * the worker calls it again while it returns a full count). Returns how many.
 */
export function expireDeadLetters(schema: string): Statement<{ retentionMs: number; limit: number }, { count: number }> {
  const s = quoteSchema(schema);
  return statement(`WITH gone AS (
  DELETE FROM ${s}."dead_letters" WHERE "uuid" IN (
    SELECT "uuid" FROM ${s}."dead_letters" WHERE "died_at" < now() - make_interval(secs => :retentionMs::float8 / 1000) LIMIT :limit)
  RETURNING 1
) SELECT count(*)::int AS "count" FROM gone`);
}

/**
 * One bounded step of `dead-letters retry --all`: moves up to `:limit` dead letters with uuid after `:after` (null:
 * from the first), in uuid order, back into the outbox (as `retryDeadLetters` does). Returns how many were
 * taken, how many were queued (a uuid already queued is not queued twice) and the last uuid taken.
 */
export function retryDeadLettersBatch(
  schema: string,
): Statement<{ limit: number; after: string | null }, { taken: number; queued: number; last: string | null }> {
  const s = quoteSchema(schema);
  return statement(`WITH picked AS (
  SELECT "uuid" FROM ${s}."dead_letters" WHERE :after::uuid IS NULL OR "uuid" > :after::uuid ORDER BY "uuid" LIMIT :limit
), revived AS (
  DELETE FROM ${s}."dead_letters" d USING picked p WHERE d."uuid" = p."uuid" RETURNING d.*
), queued AS (
  INSERT INTO ${s}."outbox" (${EVENT_COLUMNS}, "next_attempt_at")
  SELECT ${recordColumnList()}, 0, NULL, "created_at", now()
  FROM revived
  ON CONFLICT ("uuid") DO NOTHING
  RETURNING 1
)
SELECT (SELECT count(*) FROM revived)::int AS "taken", (SELECT count(*) FROM queued)::int AS "queued", (SELECT max("uuid"::text) FROM revived) AS "last"`);
}

/** How many dead letters died before `:before`. */
export function countDeadLettersBefore(schema: string): Statement<{ before: string }, { count: number }> {
  return statement(`SELECT count(*)::int AS "count" FROM ${quoteSchema(schema)}."dead_letters" WHERE "died_at" < :before::timestamptz`);
}

/** Deletes the dead letters that died before `:before`; returns how many. */
export function purgeDeadLetters(schema: string): Statement<{ before: string }, { count: number }> {
  return statement(
    `WITH gone AS (DELETE FROM ${quoteSchema(schema)}."dead_letters" WHERE "died_at" < :before::timestamptz RETURNING 1) SELECT count(*)::int AS "count" FROM gone`,
  );
}

/** How many dead letters there are (one scan: for an operator's command, not for every scrape). */
export function countDeadLetters(schema: string): Statement<Record<never, never>, { total: number }> {
  return statement(`SELECT count(*)::int AS "total" FROM ${quoteSchema(schema)}."dead_letters"`);
}
