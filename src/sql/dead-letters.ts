/** Dead letters: listing, retrying (all at once or in bounded steps), purging, and the worker's retention. */
import { EVENT_COLUMNS, quoteSchema, recordColumnList } from './columns.ts';

/** Up to `$1` dead letters, newest first. */
export function listDeadLetters(schema: string): string {
  return `SELECT "uuid", "event", "distinct_id", "reason", "attempts", "died_at" FROM ${quoteSchema(schema)}."dead_letters"
ORDER BY "died_at" DESC, "uuid" LIMIT $1`;
}

/**
 * Moves dead letters back into the outbox with their attempts reset, due now: those with uuid in `$1`, or
 * all of them when `$1` is null. Keeps the uuid and timestamp, so PostHog can still drop a duplicate.
 */
export function retryDeadLetters(schema: string): string {
  const s = quoteSchema(schema);
  return `WITH revived AS (
  DELETE FROM ${s}."dead_letters" WHERE $1::uuid[] IS NULL OR "uuid" = ANY($1::uuid[])
  RETURNING *
)
INSERT INTO ${s}."outbox" (${EVENT_COLUMNS}, "next_attempt_at")
SELECT ${recordColumnList()}, 0, NULL, "created_at", now()
FROM revived
ON CONFLICT ("uuid") DO NOTHING
RETURNING "uuid"`;
}

/**
 * Deletes dead letters that died more than `$1` milliseconds ago, at most `$2` of them (a bounded statement:
 * the worker calls it again while it returns a full count). Returns how many.
 */
export function expireDeadLetters(schema: string): string {
  const s = quoteSchema(schema);
  return `WITH gone AS (
  DELETE FROM ${s}."dead_letters" WHERE "uuid" IN (
    SELECT "uuid" FROM ${s}."dead_letters" WHERE "died_at" < now() - make_interval(secs => $1::float8 / 1000) LIMIT $2)
  RETURNING 1
) SELECT count(*)::int AS "count" FROM gone`;
}

/**
 * One bounded step of `dead-letters retry --all`: moves up to `$1` dead letters with uuid after `$2` (null:
 * from the first), in uuid order, back into the outbox (as `retryDeadLetters` does). Returns how many were
 * taken, how many were queued (a uuid already queued is not queued twice) and the last uuid taken.
 */
export function retryDeadLettersBatch(schema: string): string {
  const s = quoteSchema(schema);
  return `WITH picked AS (
  SELECT "uuid" FROM ${s}."dead_letters" WHERE $2::uuid IS NULL OR "uuid" > $2::uuid ORDER BY "uuid" LIMIT $1
), revived AS (
  DELETE FROM ${s}."dead_letters" d USING picked p WHERE d."uuid" = p."uuid" RETURNING d.*
), queued AS (
  INSERT INTO ${s}."outbox" (${EVENT_COLUMNS}, "next_attempt_at")
  SELECT ${recordColumnList()}, 0, NULL, "created_at", now()
  FROM revived
  ON CONFLICT ("uuid") DO NOTHING
  RETURNING 1
)
SELECT (SELECT count(*) FROM revived)::int AS "taken", (SELECT count(*) FROM queued)::int AS "queued", (SELECT max("uuid"::text) FROM revived) AS "last"`;
}

/** How many dead letters died before `$1`. */
export function countDeadLettersBefore(schema: string): string {
  return `SELECT count(*)::int AS "count" FROM ${quoteSchema(schema)}."dead_letters" WHERE "died_at" < $1::timestamptz`;
}

/** Deletes the dead letters that died before `$1`; returns how many. */
export function purgeDeadLetters(schema: string): string {
  return `WITH gone AS (DELETE FROM ${quoteSchema(schema)}."dead_letters" WHERE "died_at" < $1::timestamptz RETURNING 1) SELECT count(*)::int AS "count" FROM gone`;
}

/** How many dead letters there are (one scan: for an operator's command, not for every scrape). */
export function countDeadLetters(schema: string): string {
  return `SELECT count(*)::int AS "total" FROM ${quoteSchema(schema)}."dead_letters"`;
}
