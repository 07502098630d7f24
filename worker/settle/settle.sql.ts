/**
 * Settling a claimed batch (worker/settle/ledger.ts), in the claim's transaction: rows deleted once PostHog
 * accepted them (or superseded unsent), retries scheduled, dead letters moved. Deleting delivered rows also
 * re-identifies what they touched: src/identify/identities.sql.ts.
 */
import { EVENT_COLUMNS, quoteSchema, recordColumnList } from '../../src/outbox/columns.ts';
import { type Statement, statement } from '../../src/sql/statement.ts';

/**
 * Deletes rows `:uuids` (held by the calling claim's transaction): identify rows superseded by a newer one (unsent),
 * or delivered rows with nothing to re-identify (their entities identified, or looked at with the same snapshot, by the pass).
 */
export function deleteRows(schema: string): Statement<{ uuids: readonly string[] }> {
  return statement(`DELETE FROM ${quoteSchema(schema)}."outbox" WHERE "uuid" = ANY(:uuids::uuid[])`);
}

/**
 * Counts a failed attempt of rows `:uuids` and schedules the next one after `:delaysMs` milliseconds each (per row),
 * with the error `:error`; `:rejectedAt` (per row, null for none) is when PostHog rejected the row's event alone
 * (`rejected_at`).
 */
export function scheduleRetry(
  schema: string,
): Statement<{ uuids: readonly string[]; delaysMs: readonly number[]; error: string; rejectedAt: readonly (string | null)[] }> {
  const s = quoteSchema(schema);
  return statement(`UPDATE ${s}."outbox" o SET "attempts" = o."attempts" + 1, "next_attempt_at" = now() + make_interval(secs => x.delay_ms / 1000.0), "last_error" = :error,
  "rejected_at" = COALESCE(x.rejected_at, o."rejected_at")
FROM unnest(:uuids::uuid[], :delaysMs::float8[], :rejectedAt::timestamptz[]) AS x("uuid", delay_ms, rejected_at)
WHERE o."uuid" = x."uuid"`);
}

/** Moves rows `:uuids` to the dead-letter table with the reasons `:reasons` and attempt counts `:attempts` (per row), in one statement. */
export function deadLetter(schema: string): Statement<{ uuids: readonly string[]; reasons: readonly string[]; attempts: readonly number[] }> {
  const s = quoteSchema(schema);
  return statement(`WITH dead AS (
  DELETE FROM ${s}."outbox" o USING unnest(:uuids::uuid[], :reasons::text[], :attempts::int[]) AS x("uuid", reason, attempts)
  WHERE o."uuid" = x."uuid"
  RETURNING o.*, x.reason, x.attempts AS counted
)
INSERT INTO ${s}."dead_letters" (${EVENT_COLUMNS}, "reason")
SELECT ${recordColumnList('dead')}, counted, "last_error", "created_at", reason FROM dead`);
}
