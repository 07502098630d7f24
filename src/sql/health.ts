/**
 * Health: whether the database answers and is set up, what kind of session a connection has, and the
 * PostHog target's state as the worker last saw it.
 */
import { quoteSchema } from './columns.ts';

/** The target is failing since now (or since earlier, if it already was) for reason `$1`. */
export function markTargetFailing(schema: string): string {
  return `INSERT INTO ${quoteSchema(schema)}."target_health" AS t ("id", "failing_since", "reason", "updated_at") VALUES (1, now(), $1, now())
ON CONFLICT ("id") DO UPDATE SET "failing_since" = COALESCE(t."failing_since", now()), "reason" = $1, "updated_at" = now()`;
}

/** PostHog accepted events: the target works. */
export function markTargetWorking(schema: string): string {
  return `INSERT INTO ${quoteSchema(schema)}."target_health" AS t ("id", "failing_since", "reason", "updated_at") VALUES (1, NULL, NULL, now())
ON CONFLICT ("id") DO UPDATE SET "failing_since" = NULL, "reason" = NULL, "updated_at" = now()`;
}

/** Drain passes fail (the database refused, not PostHog) since now, or since earlier, for reason `$1`. */
export function markDrainFailing(schema: string): string {
  return `INSERT INTO ${quoteSchema(schema)}."target_health" AS t ("id", "drain_failing_since", "drain_error", "updated_at") VALUES (1, now(), $1, now())
ON CONFLICT ("id") DO UPDATE SET "drain_failing_since" = COALESCE(t."drain_failing_since", now()), "drain_error" = $1, "updated_at" = now()`;
}

/** A drain pass succeeded again. */
export function markDrainWorking(schema: string): string {
  return `UPDATE ${quoteSchema(schema)}."target_health" SET "drain_failing_since" = NULL, "drain_error" = NULL, "updated_at" = now() WHERE "id" = 1`;
}

/** The target's state as last written (no row: no worker has reported yet), and the workers' failing drain passes. */
export function targetHealth(schema: string): string {
  return `SELECT "failing_since", "reason", "updated_at", "drain_failing_since", "drain_error" FROM ${quoteSchema(schema)}."target_health" WHERE "id" = 1`;
}

/** Whether the outbox table `$1` (`schema.outbox`) and pg-boss's schema `$2` exist: the worker's start-up check. */
export function installed(): string {
  return `SELECT to_regclass($1) IS NOT NULL AND to_regnamespace($2) IS NOT NULL AS ok`;
}

/**
 * Bounds the calling transaction's statements (set for it only): each waits at most `$1` milliseconds for a
 * lock (then 55P03) and runs at most `$2` milliseconds (then 57014). `/healthz` and `/metrics` reads.
 */
export function boundStatements(): string {
  return `SELECT set_config('lock_timeout', $1::text, true), set_config('statement_timeout', $2::text, true)`;
}

/**
 * `/healthz`: the outbox table can be read. One primary-key index probe for a uuid no row has: it needs the
 * table's lock and its index, reads one index page, and returns nothing.
 */
export function probeOutbox(schema: string): string {
  return `SELECT 1 FROM ${quoteSchema(schema)}."outbox" WHERE "uuid" = '00000000-0000-0000-0000-000000000000'`;
}

/** The database answers (connection checks, `/healthz`). */
export function ping(): string {
  return 'SELECT 1';
}

/** The server process serving this statement: one per session on a direct or session-pooled connection. */
export function backendPid(): string {
  return `SELECT pg_backend_pid() AS "pid"`;
}
