/**
 * What the operator console reads beyond `status` (src/ops/breakdown.ts, dead-letter-search.ts, delivery.ts,
 * workers.ts): the backlog by event name, profiles by kind, dead letters found by a filter and one of them
 * whole, PostgreSQL's own counters of the outbox tables, and the workers pg-boss's instance registry holds.
 * Read-only, except `discardDeadLetters`.
 */
import { quoteSchema } from '../outbox/columns.ts';
import { type Statement, statement } from '../sql/statement.ts';
import type { DeadLetterRow } from './dead-letters.sql.ts';

/**
 * The backlog by event name, most queued first, up to `:limit` names: as `outboxStatus` counts it (due now, waiting
 * for a retry, the oldest row's age), per name; `names` is how many names there are in all.
 */
export function backlogByEvent(schema: string): Statement<{ limit: number }> {
  return statement(`SELECT "event", count(*)::int AS "queued",
  (count(*) FILTER (WHERE "next_attempt_at" <= now()))::int AS "due",
  (count(*) FILTER (WHERE "next_attempt_at" > now()))::int AS "retrying",
  (extract(epoch FROM now() - min("created_at")) * 1000)::float8 AS "oldest_age_ms",
  (count(*) OVER ())::int AS "names"
FROM ${quoteSchema(schema)}."outbox"
GROUP BY "event" ORDER BY count(*) DESC, "event" LIMIT :limit`);
}

/** Profiles PostHog has been told about, by kind, with the oldest last identify of each kind. */
export function profilesByKind(schema: string): Statement {
  return statement(`SELECT "kind", count(*)::int AS "known", min("sent_at") AS "oldest_sent_at" FROM ${quoteSchema(schema)}."identities"
GROUP BY "kind" ORDER BY "kind"`);
}

/**
 * Up to `:limit` dead letters, newest first (the order of `listDeadLetters`), of event `:event` (exactly), whose
 * reason contains `:reason` (any case), that died at or after `:from` and before `:until`; a null filter is no filter. `matched`:
 * how many match in all.
 */
export function findDeadLetters(
  schema: string,
): Statement<{ limit: number; event: string | null; reason: string | null; from: string | null; until: string | null }, DeadLetterRow & { matched: number }> {
  return statement(`SELECT "uuid", "event", "distinct_id", "reason", "attempts", "died_at", (count(*) OVER ())::int AS "matched"
FROM ${quoteSchema(schema)}."dead_letters"
WHERE (:event::text IS NULL OR "event" = :event::text)
  AND (:reason::text IS NULL OR strpos(lower("reason"), lower(:reason::text)) > 0)
  AND (:from::timestamptz IS NULL OR "died_at" >= :from::timestamptz)
  AND (:until::timestamptz IS NULL OR "died_at" < :until::timestamptz)
ORDER BY "died_at" DESC, "uuid" LIMIT :limit`);
}

/** The dead letter `:uuid`, every column (none: no such dead letter). */
export function readDeadLetter(schema: string): Statement<{ uuid: string }, DeadLetterRow & WholeRow> {
  return statement(`SELECT "uuid", "event", "distinct_id", "properties", "groups", "timestamp", "user_id", "user_profile", "automation_id", "automation_profile",
  "organization_id", "organization_profile", "attempts", "last_error", "created_at", "reason", "died_at"
FROM ${quoteSchema(schema)}."dead_letters" WHERE "uuid" = :uuid::uuid`);
}

/** What `readDeadLetter` reads beyond a listing's columns. */
interface WholeRow {
  properties: unknown;
  groups: unknown;
  timestamp: Date;
  user_id: string | null;
  user_profile: unknown;
  automation_id: string | null;
  automation_profile: unknown;
  organization_id: string | null;
  organization_profile: unknown;
  last_error: string | null;
  created_at: Date;
}

/** Deletes the dead letters whose uuid is in `:uuids`; returns the uuids deleted. */
export function discardDeadLetters(schema: string): Statement<{ uuids: readonly string[] }, { uuid: string }> {
  return statement(`DELETE FROM ${quoteSchema(schema)}."dead_letters" WHERE "uuid" = ANY(:uuids::uuid[]) RETURNING "uuid"`);
}

/**
 * PostgreSQL's cumulative statistics of the outbox tables (`pg_stat_user_tables`: rows inserted, updated and
 * deleted since the statistics were last reset, counted by every session, flushed by each within seconds), the
 * server's time, and the oldest queued event's age (`oldestEventAge`'s lookup). As float8: exact up to 2^53.
 */
export function tableCounters(schema: string): Statement {
  const s = quoteSchema(schema);
  const outbox = `'${s}."outbox"'::regclass`;
  const dead = `'${s}."dead_letters"'::regclass`;
  return statement(`SELECT now() AS "at",
  pg_stat_get_tuples_inserted(${outbox})::float8 AS "outbox_inserted",
  pg_stat_get_tuples_updated(${outbox})::float8 AS "outbox_updated",
  pg_stat_get_tuples_deleted(${outbox})::float8 AS "outbox_deleted",
  pg_stat_get_tuples_inserted(${dead})::float8 AS "dead_letters_inserted",
  (SELECT (extract(epoch FROM now() - "created_at") * 1000)::float8 FROM ${s}."outbox" ORDER BY "uuid" LIMIT 1) AS "oldest_age_ms"`);
}

/** Whether the table `:table` exists (pg-boss's instance registry, `pgboss.instance`, since pg-boss 12). */
export function hasTable(): Statement<{ table: string }, { exists: boolean }> {
  return statement(`SELECT to_regclass(:table::text) IS NOT NULL AS "exists"`);
}

/**
 * The pg-boss instances of workers (their pg-boss sessions carry the application name `:application`) heard from in the
 * last day, that work the drain queue `:queue` (or registered no work yet), live ones first: pg-boss's own registry
 * (`getInstances()`), which each instance refreshes on its heartbeat. `drain` is its entry for the queue.
 */
export function workerInstances(pgboss: string): Statement<{ application: string; queue: string }> {
  const s = quoteSchema(pgboss);
  return statement(`SELECT i."id", i."host", i."pid", i."version", i."started_on", i."heartbeat_on", i."stopped_on", i."crash_restarts",
  (i."stopped_on" IS NULL AND i."heartbeat_on" >= now() - i."heartbeat_seconds" * 3 * interval '1 second') AS "live",
  (i."metrics"->>'rss')::float8 AS "rss", (i."metrics"->>'cpu')::float8 AS "cpu", w."drain"
FROM ${s}."instance" i
LEFT JOIN LATERAL (SELECT x AS "drain" FROM jsonb_array_elements(i."workers") x WHERE x->>'queue' = :queue LIMIT 1) w ON true
WHERE i."application_name" = :application AND (w."drain" IS NOT NULL OR jsonb_array_length(i."workers") = 0) AND i."heartbeat_on" > now() - interval '1 day'
ORDER BY "live" DESC, i."started_on" DESC LIMIT 50`);
}

/** Sessions open on this database under the application name `:application` (the workers' own pools). */
export function sessionsNamed(): Statement<{ application: string }, { sessions: number }> {
  return statement(`SELECT count(*)::int AS "sessions" FROM pg_stat_activity WHERE "datname" = current_database() AND "application_name" = :application`);
}

/** Opens the calling session's read-only snapshot: every statement until `endSnapshot` sees the same committed data. */
export function beginSnapshot(): Statement {
  return statement('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
}

/** Ends the snapshot (it wrote nothing). */
export function endSnapshot(): Statement {
  return statement('ROLLBACK');
}
