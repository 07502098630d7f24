/**
 * The worker's health: the PostHog target's and the drain's state as the worker records them (read back by
 * `status`: src/ops/status.sql.ts), its start-up check, and the bounded reads of `/healthz` and `/metrics`.
 */
import { quoteSchema } from '../../src/outbox/columns.ts';
import { type Statement, statement } from '../../src/sql/statement.ts';

/** The target is failing since now (or since earlier, if it already was) for `:reason`. */
export function markTargetFailing(schema: string): Statement<{ reason: string }> {
  return statement(`INSERT INTO ${quoteSchema(schema)}."target_health" AS t ("id", "failing_since", "reason", "updated_at") VALUES (1, now(), :reason, now())
ON CONFLICT ("id") DO UPDATE SET "failing_since" = COALESCE(t."failing_since", now()), "reason" = :reason, "updated_at" = now()`);
}

/** PostHog accepted events: the target works. */
export function markTargetWorking(schema: string): Statement {
  return statement(`INSERT INTO ${quoteSchema(schema)}."target_health" AS t ("id", "failing_since", "reason", "updated_at") VALUES (1, NULL, NULL, now())
ON CONFLICT ("id") DO UPDATE SET "failing_since" = NULL, "reason" = NULL, "updated_at" = now()`);
}

/** Drain passes fail (the database refused, not PostHog) since now, or since earlier, for `:reason`. */
export function markDrainFailing(schema: string): Statement<{ reason: string }> {
  return statement(`INSERT INTO ${quoteSchema(schema)}."target_health" AS t ("id", "drain_failing_since", "drain_error", "updated_at") VALUES (1, now(), :reason, now())
ON CONFLICT ("id") DO UPDATE SET "drain_failing_since" = COALESCE(t."drain_failing_since", now()), "drain_error" = :reason, "updated_at" = now()`);
}

/** A drain pass succeeded again. */
export function markDrainWorking(schema: string): Statement {
  return statement(`UPDATE ${quoteSchema(schema)}."target_health" SET "drain_failing_since" = NULL, "drain_error" = NULL, "updated_at" = now() WHERE "id" = 1`);
}

/** Whether the outbox table `:outboxTable` (`schema.outbox`) and pg-boss's schema `:pgbossSchema` exist: the worker's start-up check. */
export function installed(): Statement<{ outboxTable: string; pgbossSchema: string }, { ok: boolean }> {
  return statement(`SELECT to_regclass(:outboxTable) IS NOT NULL AND to_regnamespace(:pgbossSchema) IS NOT NULL AS ok`);
}

/**
 * `/healthz`: the outbox table can be read. One primary-key index probe for a uuid no row has: it needs the
 * table's lock and its index, reads one index page, and returns nothing.
 */
export function probeOutbox(schema: string): Statement {
  return statement(`SELECT 1 FROM ${quoteSchema(schema)}."outbox" WHERE "uuid" = '00000000-0000-0000-0000-000000000000'`);
}
