/** `status` and the worker's metrics: backlog, retries, dead letters by reason, bounded counts for big backlogs. */
import { quoteSchema } from '../outbox/columns.ts';
import { type Statement, statement } from '../sql/statement.ts';

/** One row: backlog, events due now (those being sent included), events waiting for a retry, the oldest row's age. */
export function outboxStatus(
  schema: string,
): Statement<Record<never, never>, { backlog: number; due: number; retrying: number; oldest_age_ms: number | null; next_retry_at: Date | null }> {
  return statement(`SELECT count(*)::int AS "backlog",
  (count(*) FILTER (WHERE "next_attempt_at" <= now()))::int AS "due",
  (count(*) FILTER (WHERE "next_attempt_at" > now()))::int AS "retrying",
  (extract(epoch FROM now() - min("created_at")) * 1000)::float8 AS "oldest_age_ms",
  min("next_attempt_at") FILTER (WHERE "next_attempt_at" > now()) AS "next_retry_at"
FROM ${quoteSchema(schema)}."outbox"`);
}

/** Up to `:limit` rows waiting for a retry after a failed attempt, soonest first. */
export function retryingRows(
  schema: string,
): Statement<{ limit: number }, { uuid: string; event: string; distinct_id: string; attempts: number; next_attempt_at: Date; last_error: string | null }> {
  return statement(`SELECT "uuid", "event", "distinct_id", "attempts", "next_attempt_at", "last_error" FROM ${quoteSchema(schema)}."outbox"
WHERE "next_attempt_at" > now()
ORDER BY "next_attempt_at" LIMIT :limit`);
}

/** Dead letters grouped by reason, most frequent first. */
export function deadLettersByReason(schema: string): Statement<Record<never, never>, { reason: string; count: number; last_died_at: Date }> {
  return statement(`SELECT "reason", count(*)::int AS "count", max("died_at") AS "last_died_at" FROM ${quoteSchema(schema)}."dead_letters"
GROUP BY "reason" ORDER BY count(*) DESC, "reason" LIMIT 100`);
}

/**
 * How many rows `table` holds (one event each), counted only up to `:limit` (reads at most `:limit` rows); with the planner's estimate of rows (`pg_class.reltuples`, as of the last VACUUM or
 * ANALYZE; -1 when never analysed) for above it.
 */
export function cappedCount(
  schema: string,
  table: 'outbox' | 'dead_letters',
): Statement<{ limit: number }, { counted: number; events: number; estimate: number }> {
  const s = quoteSchema(schema);
  return statement(`SELECT count(*)::int AS "counted", count(*)::int AS "events",
  (SELECT reltuples FROM pg_class WHERE oid = '${s}."${table}"'::regclass)::float8 AS "estimate"
FROM (SELECT 1 FROM ${s}."${table}" LIMIT :limit) AS capped`);
}

/**
 * Age in milliseconds of the oldest queued event (null when empty): the lowest uuid, since event uuids are
 * UUIDv7 assigned at write time, so this is one primary-key index lookup instead of a scan of `created_at`.
 */
export function oldestEventAge(schema: string): Statement<Record<never, never>, { age_ms: number }> {
  return statement(`SELECT (extract(epoch FROM now() - "created_at") * 1000)::float8 AS "age_ms" FROM ${quoteSchema(schema)}."outbox" ORDER BY "uuid" LIMIT 1`);
}

/** The target's state as the workers last wrote it (no row: no worker has reported yet), and the workers' failing drain passes. */
export function targetHealth(
  schema: string,
): Statement<
  Record<never, never>,
  { failing_since: Date | null; reason: string | null; updated_at: Date; drain_failing_since: Date | null; drain_error: string | null }
> {
  return statement(
    `SELECT "failing_since", "reason", "updated_at", "drain_failing_since", "drain_error" FROM ${quoteSchema(schema)}."target_health" WHERE "id" = 1`,
  );
}
