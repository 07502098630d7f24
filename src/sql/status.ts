/** `status` and the worker's metrics: backlog, retries, dead letters by reason, bounded counts for big backlogs. */
import { quoteSchema } from './columns.ts';

/** One row: backlog, events due now (those being sent included), events waiting for a retry, the oldest row's age. */
export function outboxStatus(schema: string): string {
  return `SELECT count(*)::int AS "backlog",
  (count(*) FILTER (WHERE "next_attempt_at" <= now()))::int AS "due",
  (count(*) FILTER (WHERE "next_attempt_at" > now()))::int AS "retrying",
  (extract(epoch FROM now() - min("created_at")) * 1000)::float8 AS "oldest_age_ms",
  min("next_attempt_at") FILTER (WHERE "next_attempt_at" > now()) AS "next_retry_at"
FROM ${quoteSchema(schema)}."outbox"`;
}

/** Up to `$1` rows waiting for a retry after a failed attempt, soonest first. */
export function retryingRows(schema: string): string {
  return `SELECT "uuid", "event", "distinct_id", "attempts", "next_attempt_at", "last_error" FROM ${quoteSchema(schema)}."outbox"
WHERE "next_attempt_at" > now()
ORDER BY "next_attempt_at" LIMIT $1`;
}

/** Dead letters grouped by reason, most frequent first. */
export function deadLettersByReason(schema: string): string {
  return `SELECT "reason", count(*)::int AS "count", max("died_at") AS "last_died_at" FROM ${quoteSchema(schema)}."dead_letters"
GROUP BY "reason" ORDER BY count(*) DESC, "reason" LIMIT 100`;
}

/**
 * How many rows `table` holds (one event each), counted only up to `$1` (reads at most `$1` rows); with the planner's estimate of rows (`pg_class.reltuples`, as of the last VACUUM or
 * ANALYZE; -1 when never analysed) for above it.
 */
export function cappedCount(schema: string, table: 'outbox' | 'dead_letters'): string {
  const s = quoteSchema(schema);
  return `SELECT count(*)::int AS "counted", count(*)::int AS "events",
  (SELECT reltuples FROM pg_class WHERE oid = '${s}."${table}"'::regclass)::float8 AS "estimate"
FROM (SELECT 1 FROM ${s}."${table}" LIMIT $1) AS capped`;
}

/**
 * Age in milliseconds of the oldest queued event (null when empty): the lowest uuid, since event uuids are
 * UUIDv7 assigned at write time, so this is one primary-key index lookup instead of a scan of `created_at`.
 */
export function oldestEventAge(schema: string): string {
  return `SELECT (extract(epoch FROM now() - "created_at") * 1000)::float8 AS "age_ms" FROM ${quoteSchema(schema)}."outbox" ORDER BY "uuid" LIMIT 1`;
}
