/**
 * Delivery (the worker): claiming due rows, the lease that frees them if the worker hangs, and settling a
 * batch (unsent identify rows deleted, retries scheduled, dead letters moved); the idle worker's probes.
 * Deleting delivered rows re-identifies what they touched: identities.ts.
 */
import { EVENT_COLUMNS, quoteSchema, recordColumnList } from './columns.ts';

/**
 * The columns a worker reads from a claimed row: what it sends, and the entities it touched with the profile
 * snapshots it carries (worker/pass-identities.ts compares them, so that most batches of a pass are simply
 * deleted without PostgreSQL reading their snapshots again).
 */
const CLAIMED = `o."uuid", o."event", o."distinct_id", o."properties", o."groups", o."timestamp", o."attempts", o."rejected_at",
  o."user_id", o."user_profile", o."automation_id", o."automation_profile", o."organization_id", o."organization_profile"`;

/**
 * Bytes of stored properties a claim returns at most, beyond its first row: a batch's memory is bounded by its
 * events (the claim's LIMIT) and by this. `pg_column_size` is the stored size, compressed when PostgreSQL
 * compressed the value (values over ~2 KB): a batch of large, very repetitive events may hold a few times this
 * once parsed. The first row is always taken, so an `$ai_*` event of up to 8 MiB (the AI endpoint's limit, which
 * record() allows it) is claimed, alone: a batch holds at most this plus one event. PostHog refuses other events
 * over 1 MB, so a batch of 1,000 such events would otherwise be a gigabyte;
 * with the CLI worker's sidecar heap (cli/heap.ts, 160 MB old space) and two lanes, 4 MB each leaves room. Events
 * of a few KB fill a batch of 1,000 long before it.
 */
export const CLAIM_BYTES = 4 * 1024 * 1024;

/**
 * Rows that have failed: the predicate of the partial `next_attempt_at` index (`outbox_retry_idx`), written once
 * so that every statement about retries says it the same way and the planner reads that index. The other rows
 * (`UNTRIED`) are due from their write and are found in primary-key order.
 */
const FAILED = `"attempts" > 0`;
const UNTRIED = `"attempts" = 0`;

/**
 * Claims up to `$1` due rows, skipping rows other workers hold: first rows never tried (`attempts` = 0) in
 * primary-key order (UUIDv7: write order; the handler's insert updates no other index), then,
 * as far as they leave room, rows whose retry has come due (soonest first, from the partial `next_attempt_at`
 * index, which holds only rows that have failed). Retries wait only while PostHog fails, so putting them second
 * delays little, and a row that keeps failing cannot crowd out rows never tried. The second part is read only if
 * the first leaves room, so the claim locks no row it does not return. The rows stay locked by the claiming
 * transaction until it settles them (delete, retry, dead letter) and commits; rows it locks but does not return
 * (past the byte budget, below) are free again at the commit. The
 * claim writes nothing, so it costs what a plain SELECT costs; a worker that dies holding rows loses them as
 * soon as PostgreSQL sees its connection go, and a hung one when the lease (`beginClaim`) ends its session.
 * `expired` flags rows recorded more than `$2` milliseconds ago (the maximum age); `superseded` flags identify
 * rows whose entity has been identified again since (a newer profile is queued or sent).
 *
 * `$3` (a uuid; the nil uuid at first) is where the scan of rows never tried starts, as the pass's claims so far
 * leave it (worker/rows.ts, `nextClaimStart`): past the last of them taken into a batch, or past every row there
 * was once a scan found none left. Without it each claim would walk past every row the pass's other lanes hold
 * (locked, skipped one by one), and after an outage past every row that failed (the oldest), once per claim:
 * claiming and deleting 400,000 failed rows, batch by batch, took 13.2 s against 3.5 s. A row before it that turns
 * claimable during the pass (given back, committed late) is claimed by the next pass, which starts at the nil uuid.
 * Retries come from their own index, so their scan needs no such start.
 */
export function claimBatch(schema: string): string {
  const s = quoteSchema(schema);
  const columns = `${CLAIMED}, o."created_at", o."identity_kind", o."identity_id", o."identity_version"`;
  // Subqueries, not CTEs: PostgreSQL copies a CTE's rows into a store of their own (~1 us per claimed row here).
  const untried = `SELECT ${columns} FROM ${s}."outbox" o WHERE o.${UNTRIED} AND o."next_attempt_at" <= now() AND o."uuid" >= $3::uuid
  ORDER BY o."uuid" LIMIT $1 FOR UPDATE SKIP LOCKED`;
  const retries = `SELECT ${columns} FROM ${s}."outbox" o WHERE o.${FAILED} AND o."next_attempt_at" <= now()
  ORDER BY o."next_attempt_at" LIMIT $1 FOR UPDATE SKIP LOCKED`;
  // The rows past the byte budget (CLAIM_BYTES, counted in claim order, the first row always taken) stay locked
  // but unread until the batch's transaction commits: free again then. `locked` says how many rows the claim
  // locked, so the worker knows that more were due than it read.
  return `SELECT ${CLAIMED}, o."locked"::int AS "locked", o."created_at" < now() - make_interval(secs => $2::float8 / 1000) AS "expired",
  CASE WHEN o."identity_kind" IS NULL THEN false ELSE COALESCE(o."identity_version" <
    (SELECT i."version" FROM ${s}."identities" i WHERE i."kind" = o."identity_kind" AND i."entity_id" = o."identity_id"), false) END AS "superseded"
FROM (
  SELECT c.*, sum(pg_column_size(c."properties")) OVER (ROWS UNBOUNDED PRECEDING) - pg_column_size(c."properties") AS "before", count(*) OVER () AS "locked"
  FROM (SELECT * FROM (${untried}) u UNION ALL SELECT * FROM (${retries}) r LIMIT $1) c
) o WHERE o."before" < ${CLAIM_BYTES}`;
}

/**
 * Sent before each claim, in the same round trip. The lease of the calling transaction: PostgreSQL ends the
 * session if it sits idle in the transaction (a request to PostHog outstanding) for more than `$1`
 * milliseconds, which frees the rows it holds. The same bound on each of its statements (`statement_timeout`,
 * for this transaction only): a role's or database's own timeout (hosted platforms set short ones) would
 * otherwise cut the claim or the settling of a batch PostHog has already accepted. And `newest`, the greatest uuid in the outbox (one lookup at
 * the end of the primary key), read before the claim's own snapshot: where a claim whose scan of rows never
 * tried reached the end may let the next one start (worker/rows.ts, `nextClaimStart`).
 */
export function beginClaim(schema: string): string {
  return `SELECT set_config('idle_in_transaction_session_timeout', $1::text, true), set_config('statement_timeout', $1::text, true), (SELECT "uuid" FROM ${quoteSchema(schema)}."outbox" ORDER BY "uuid" DESC LIMIT 1) AS "newest"`;
}

/**
 * Deletes rows `$1` (held by the calling claim's transaction): identify rows superseded by a newer one (unsent),
 * or delivered rows with nothing to re-identify (their entities identified, or looked at with the same snapshot, by the pass).
 */
export function deleteRows(schema: string): string {
  return `DELETE FROM ${quoteSchema(schema)}."outbox" WHERE "uuid" = ANY($1::uuid[])`;
}

/** `scheduleRetry`'s parameters `$1`..`$4`, named and typed: a call site passes them in this order, without casts. */
export type ScheduleRetryParameters = [uuids: readonly string[], delaysMs: readonly number[], error: string, rejectedAt: readonly (string | null)[]];

/**
 * Counts a failed attempt of rows `$1` and schedules the next one after `$2` milliseconds each (per row), with
 * the error `$3`; `$4` (per row, null for none) is when PostHog rejected the row's event alone (`rejected_at`).
 */
export function scheduleRetry(schema: string): string {
  const s = quoteSchema(schema);
  return `UPDATE ${s}."outbox" o SET "attempts" = o."attempts" + 1, "next_attempt_at" = now() + make_interval(secs => x.delay_ms / 1000.0), "last_error" = $3,
  "rejected_at" = COALESCE(x.rejected_at, o."rejected_at")
FROM unnest($1::uuid[], $2::float8[], $4::timestamptz[]) AS x("uuid", delay_ms, rejected_at)
WHERE o."uuid" = x."uuid"`;
}

/** Moves rows `$1` to the dead-letter table with the reasons `$2` and attempt counts `$3` (per row), in one statement. */
export function deadLetter(schema: string): string {
  const s = quoteSchema(schema);
  return `WITH dead AS (
  DELETE FROM ${s}."outbox" o USING unnest($1::uuid[], $2::text[], $3::int[]) AS x("uuid", reason, attempts)
  WHERE o."uuid" = x."uuid"
  RETURNING o.*, x.reason, x.attempts AS counted
)
INSERT INTO ${s}."dead_letters" (${EVENT_COLUMNS}, "reason")
SELECT ${recordColumnList('dead')}, counted, "last_error", "created_at", reason FROM dead`;
}

/**
 * PostHog accepts again after failing: rows waiting out a backoff become due now, so a backlog held back by
 * an outage goes out at once rather than over the next backoff interval. Only rows that failed wait, so this
 * touches at most the batches tried during the outage (the rows of the partial index of rows that failed).
 */
export function resumeWaitingRows(schema: string): string {
  return `UPDATE ${quoteSchema(schema)}."outbox" SET "next_attempt_at" = now() WHERE ${FAILED} AND "next_attempt_at" > now()`;
}

/**
 * The oldest row never tried (primary-key order): a row never tried is due from its write (the worker defers
 * only rows that failed), so the oldest one is due when any is. The primary key holds every row, so this walks
 * the failed rows ahead of it: after an outage those are the oldest (each failed pass tried the oldest rows), a
 * batch per backoff step (about one a minute per worker; 300,000 rows read in ~50 ms). While PostHog is down
 * the worker is paused and does not probe; once it accepts again, they are made due and drained. A row edited
 * by hand to be due later holds this lookup up to its time; the minutely safety-net run claims the rows
 * behind it.
 */
function oldestUntried(s: string): string {
  return `SELECT "next_attempt_at" FROM ${s}."outbox" WHERE ${UNTRIED} ORDER BY "uuid" LIMIT 1`;
}

/**
 * The retry that comes due first: one lookup in the partial index of rows that failed. A lookup, not
 * `EXISTS (... WHERE next_attempt_at <= now())`: the planner, reading that most rows' `next_attempt_at` has
 * passed (rows never tried), would scan the whole table for a failed row that is due.
 */
function soonestRetry(s: string): string {
  return `SELECT "next_attempt_at" FROM ${s}."outbox" WHERE ${FAILED} ORDER BY "next_attempt_at" LIMIT 1`;
}

/** When the next row becomes due (null when the outbox is empty): the oldest row never tried, or the soonest retry. */
export function nextDue(schema: string): string {
  const s = quoteSchema(schema);
  return `SELECT LEAST((${oldestUntried(s)}), (${soonestRetry(s)})) AS "at"`;
}

/** Whether any row is due: the idle worker's probe (`nextDue`'s two lookups). */
export function anyDue(schema: string): string {
  return `SELECT COALESCE((${nextDue(schema)}) <= now(), false) AS "due"`;
}
