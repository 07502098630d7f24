/**
 * When rows come due (worker/scheduling/): the next due time, the idle probe's "anything due?", and making
 * the rows that wait out a backoff due at once when PostHog accepts again.
 */
import { FAILED_ROWS, quoteSchema, UNTRIED_ROWS } from '../../src/outbox/columns.ts';
import { type Statement, statement } from '../../src/sql/statement.ts';

/**
 * PostHog accepts again after failing: rows waiting out a backoff become due now, so a backlog held back by
 * an outage goes out at once rather than over the next backoff interval. Only rows that failed wait, so this
 * touches at most the batches tried during the outage (the rows of the partial index of rows that failed).
 */
export function resumeWaitingRows(schema: string): Statement {
  return statement(`UPDATE ${quoteSchema(schema)}."outbox" SET "next_attempt_at" = now() WHERE ${FAILED_ROWS} AND "next_attempt_at" > now()`);
}

/**
 * The oldest row never tried (primary-key order): a row never tried is due from its write (the worker defers
 * only rows that failed), so the oldest one is due when any is. The primary key holds every row, so this walks
 * the failed rows ahead of it: after an outage those are the oldest (each failed pass tried the oldest rows), a
 * batch per backoff step (about one a minute per worker; 300,000 rows read in ~50 ms). While PostHog is down
 * the worker is paused and does not probe; once it accepts again, they are made due and drained. A row edited
 * by hand to be due later holds this lookup up to its time; the minutely safety-net pass claims the rows
 * behind it.
 */
function oldestUntried(s: string): string {
  return `SELECT "next_attempt_at" FROM ${s}."outbox" WHERE ${UNTRIED_ROWS} ORDER BY "uuid" LIMIT 1`;
}

/**
 * The retry that comes due first: one lookup in the partial index of rows that failed. A lookup, not
 * `EXISTS (... WHERE next_attempt_at <= now())`: the planner, reading that most rows' `next_attempt_at` has
 * passed (rows never tried), would scan the whole table for a failed row that is due.
 */
function soonestRetry(s: string): string {
  return `SELECT "next_attempt_at" FROM ${s}."outbox" WHERE ${FAILED_ROWS} ORDER BY "next_attempt_at" LIMIT 1`;
}

/** When the next row becomes due (null when the outbox is empty): the oldest row never tried, or the soonest retry. */
export function nextDue(schema: string): Statement<Record<never, never>, { at: Date | null }> {
  return statement(nextDueText(quoteSchema(schema)));
}

function nextDueText(s: string): string {
  return `SELECT LEAST((${oldestUntried(s)}), (${soonestRetry(s)})) AS "at"`;
}

/** Whether any row is due: the idle worker's probe (`nextDue`'s two lookups). */
export function anyDue(schema: string): Statement<Record<never, never>, { due: boolean }> {
  return statement(`SELECT COALESCE((${nextDueText(quoteSchema(schema))}) <= now(), false) AS "due"`);
}
