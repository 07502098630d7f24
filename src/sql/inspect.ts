/**
 * What the operator console reads beyond `status` (src/ops/breakdown.ts, dead-letter-search.ts, delivery.ts,
 * workers.ts): the backlog by event name, profiles by kind, dead letters found by a filter and one of them
 * whole, PostgreSQL's own counters of the outbox tables, and the workers pg-boss's instance registry holds.
 * Read-only, except `discardDeadLetters`.
 */
import { quoteSchema } from './columns.ts';

/**
 * The backlog by event name, most queued first, up to `$1` names: as `outboxStatus` counts it (due now, waiting
 * for a retry, the oldest row's age), per name; `names` is how many names there are in all.
 */
export function backlogByEvent(schema: string): string {
  return `SELECT "event", count(*)::int AS "queued",
  (count(*) FILTER (WHERE "next_attempt_at" <= now()))::int AS "due",
  (count(*) FILTER (WHERE "next_attempt_at" > now()))::int AS "retrying",
  (extract(epoch FROM now() - min("created_at")) * 1000)::float8 AS "oldest_age_ms",
  (count(*) OVER ())::int AS "names"
FROM ${quoteSchema(schema)}."outbox"
GROUP BY "event" ORDER BY count(*) DESC, "event" LIMIT $1`;
}

/** Profiles PostHog has been told about, by kind, with the oldest last identify of each kind. */
export function profilesByKind(schema: string): string {
  return `SELECT "kind", count(*)::int AS "known", min("sent_at") AS "oldest_sent_at" FROM ${quoteSchema(schema)}."identities"
GROUP BY "kind" ORDER BY "kind"`;
}

/**
 * Up to `$1` dead letters, newest first (the order of `listDeadLetters`), of event `$2` (exactly), whose reason
 * contains `$3` (any case), that died at or after `$4` and before `$5`; a null filter is no filter. `matched`:
 * how many match in all.
 */
export function findDeadLetters(schema: string): string {
  return `SELECT "uuid", "event", "distinct_id", "reason", "attempts", "died_at", (count(*) OVER ())::int AS "matched"
FROM ${quoteSchema(schema)}."dead_letters"
WHERE ($2::text IS NULL OR "event" = $2::text)
  AND ($3::text IS NULL OR strpos(lower("reason"), lower($3::text)) > 0)
  AND ($4::timestamptz IS NULL OR "died_at" >= $4::timestamptz)
  AND ($5::timestamptz IS NULL OR "died_at" < $5::timestamptz)
ORDER BY "died_at" DESC, "uuid" LIMIT $1`;
}

/** The dead letter `$1`, every column (none: no such dead letter). */
export function readDeadLetter(schema: string): string {
  return `SELECT "uuid", "event", "distinct_id", "properties", "groups", "timestamp", "user_id", "user_profile", "automation_id", "automation_profile",
  "organization_id", "organization_profile", "attempts", "last_error", "created_at", "reason", "died_at"
FROM ${quoteSchema(schema)}."dead_letters" WHERE "uuid" = $1::uuid`;
}

/** Deletes the dead letters whose uuid is in `$1`; returns the uuids deleted. */
export function discardDeadLetters(schema: string): string {
  return `DELETE FROM ${quoteSchema(schema)}."dead_letters" WHERE "uuid" = ANY($1::uuid[]) RETURNING "uuid"`;
}

/**
 * PostgreSQL's cumulative statistics of the outbox tables (`pg_stat_user_tables`: rows inserted, updated and
 * deleted since the statistics were last reset, counted by every session, flushed by each within seconds), the
 * server's time, and the oldest queued event's age (`oldestEventAge`'s lookup). As float8: exact up to 2^53.
 */
export function tableCounters(schema: string): string {
  const s = quoteSchema(schema);
  const outbox = `'${s}."outbox"'::regclass`;
  const dead = `'${s}."dead_letters"'::regclass`;
  return `SELECT now() AS "at",
  pg_stat_get_tuples_inserted(${outbox})::float8 AS "outbox_inserted",
  pg_stat_get_tuples_updated(${outbox})::float8 AS "outbox_updated",
  pg_stat_get_tuples_deleted(${outbox})::float8 AS "outbox_deleted",
  pg_stat_get_tuples_inserted(${dead})::float8 AS "dead_letters_inserted",
  (SELECT (extract(epoch FROM now() - "created_at") * 1000)::float8 FROM ${s}."outbox" ORDER BY "uuid" LIMIT 1) AS "oldest_age_ms"`;
}

/** Whether pg-boss's instance registry (`<pgboss>.instance`, pg-boss 12) exists: `$1` is `pgboss.instance`. */
export function hasTable(): string {
  return `SELECT to_regclass($1::text) IS NOT NULL AS "exists"`;
}

/**
 * The pg-boss instances of workers (their pg-boss sessions carry the application name `$1`) heard from in the last
 * day, that work the drain queue `$2` (or registered no work yet), live ones first: pg-boss's own registry
 * (`getInstances()`), which each instance refreshes on its heartbeat. `drain` is its entry for the queue.
 */
export function workerInstances(pgboss: string): string {
  const s = quoteSchema(pgboss);
  return `SELECT i."id", i."host", i."pid", i."version", i."started_on", i."heartbeat_on", i."stopped_on", i."crash_restarts",
  (i."stopped_on" IS NULL AND i."heartbeat_on" >= now() - i."heartbeat_seconds" * 3 * interval '1 second') AS "live",
  (i."metrics"->>'rss')::float8 AS "rss", (i."metrics"->>'cpu')::float8 AS "cpu", w."drain"
FROM ${s}."instance" i
LEFT JOIN LATERAL (SELECT x AS "drain" FROM jsonb_array_elements(i."workers") x WHERE x->>'queue' = $2 LIMIT 1) w ON true
WHERE i."application_name" = $1 AND (w."drain" IS NOT NULL OR jsonb_array_length(i."workers") = 0) AND i."heartbeat_on" > now() - interval '1 day'
ORDER BY "live" DESC, i."started_on" DESC LIMIT 50`;
}

/** Sessions open on this database under the application name `$1` (the workers' own pools). */
export function sessionsNamed(): string {
  return `SELECT count(*)::int AS "sessions" FROM pg_stat_activity WHERE "datname" = current_database() AND "application_name" = $1`;
}

/** Opens the calling session's read-only snapshot: every statement until `endSnapshot` sees the same committed data. */
export function beginSnapshot(): string {
  return 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY';
}

/** Ends the snapshot (it wrote nothing). */
export function endSnapshot(): string {
  return 'ROLLBACK';
}
