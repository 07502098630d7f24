/**
 * The claim (worker/claim/pass.ts): due rows taken in batches, skipping rows other workers hold, and the
 * lease that frees them if the worker hangs. Settling a claimed batch is worker/settle/settle.sql.ts.
 */
import { quoteSchema, FAILED_ROWS, UNTRIED_ROWS } from '../../src/outbox/columns.ts';
import { type Statement, statement } from '../../src/sql/statement.ts';
import type { ClaimedRow } from './rows.ts';

/**
 * The columns a worker reads from a claimed row: what it sends, and the entities it touched with the profile
 * snapshots it carries (worker/settle/pass-identities.ts compares them, so that most batches of a pass are simply
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
 * Claims up to `:batchSize` due rows, skipping rows other workers hold: first rows never tried (`attempts` = 0) in
 * primary-key order (UUIDv7: write order; the handler's insert updates no other index), then,
 * as far as they leave room, rows whose retry has come due (soonest first, from the partial `next_attempt_at`
 * index, which holds only rows that have failed). Retries wait only while PostHog fails, so putting them second
 * delays little, and a row that keeps failing cannot crowd out rows never tried. The second part is read only if
 * the first leaves room, so the claim locks no row it does not return. The rows stay locked by the claiming
 * transaction until it settles them (delete, retry, dead letter) and commits; rows it locks but does not return
 * (past the byte budget, below) are free again at the commit. The
 * claim writes nothing, so it costs what a plain SELECT costs; a worker that dies holding rows loses them as
 * soon as PostgreSQL sees its connection go, and a hung one when the lease (`beginClaim`) ends its session.
 * `expired` flags rows recorded more than `:maxAgeMs` milliseconds ago (the maximum age); `superseded` flags identify
 * rows whose entity has been identified again since (a newer profile is queued or sent).
 *
 * `:from` (a uuid; the nil uuid at first) is where the scan of rows never tried starts, as the pass's claims so far
 * leave it (worker/claim/rows.ts, `nextClaimStart`): past the last of them taken into a batch, or past every row there
 * was once a scan found none left. Without it each claim would walk past every row the pass's other lanes hold
 * (locked, skipped one by one), and after an outage past every row that failed (the oldest), once per claim:
 * claiming and deleting 400,000 failed rows, batch by batch, took 13.2 s against 3.5 s. A row before it that turns
 * claimable during the pass (given back, committed late) is claimed by the next pass, which starts at the nil uuid.
 * Retries come from their own index, so their scan needs no such start.
 */
export function claimBatch(schema: string): Statement<{ batchSize: number; maxAgeMs: number; from: string }, ClaimedRow> {
  const s = quoteSchema(schema);
  const columns = `${CLAIMED}, o."created_at", o."identity_kind", o."identity_id", o."identity_version"`;
  // Subqueries, not CTEs: PostgreSQL copies a CTE's rows into a store of their own (~1 us per claimed row here).
  const untried = `SELECT ${columns} FROM ${s}."outbox" o WHERE o.${UNTRIED_ROWS} AND o."next_attempt_at" <= now() AND o."uuid" >= :from::uuid
  ORDER BY o."uuid" LIMIT :batchSize FOR UPDATE SKIP LOCKED`;
  const retries = `SELECT ${columns} FROM ${s}."outbox" o WHERE o.${FAILED_ROWS} AND o."next_attempt_at" <= now()
  ORDER BY o."next_attempt_at" LIMIT :batchSize FOR UPDATE SKIP LOCKED`;
  // The rows past the byte budget (CLAIM_BYTES, counted in claim order, the first row always taken) stay locked
  // but unread until the batch's transaction commits: free again then. `locked` says how many rows the claim
  // locked, so the worker knows that more were due than it read.
  return statement(`SELECT ${CLAIMED}, o."locked"::int AS "locked", o."created_at" < now() - make_interval(secs => :maxAgeMs::float8 / 1000) AS "expired",
  CASE WHEN o."identity_kind" IS NULL THEN false ELSE COALESCE(o."identity_version" <
    (SELECT i."version" FROM ${s}."identities" i WHERE i."kind" = o."identity_kind" AND i."entity_id" = o."identity_id"), false) END AS "superseded"
FROM (
  SELECT c.*, sum(pg_column_size(c."properties")) OVER (ROWS UNBOUNDED PRECEDING) - pg_column_size(c."properties") AS "before", count(*) OVER () AS "locked"
  FROM (SELECT * FROM (${untried}) u UNION ALL SELECT * FROM (${retries}) r LIMIT :batchSize) c
) o WHERE o."before" < ${CLAIM_BYTES}`);
}

/**
 * Sent before each claim, in the same round trip. The lease of the calling transaction: PostgreSQL ends the
 * session if it sits idle in the transaction (a request to PostHog outstanding) for more than `:leaseMs`
 * milliseconds, which frees the rows it holds. The same bound on each of its statements (`statement_timeout`,
 * for this transaction only): a role's or database's own timeout (hosted platforms set short ones) would
 * otherwise cut the claim or the settling of a batch PostHog has already accepted. And `newest`, the greatest uuid in the outbox (one lookup at
 * the end of the primary key), read before the claim's own snapshot: where a claim whose scan of rows never
 * tried reached the end may let the next one start (worker/claim/rows.ts, `nextClaimStart`).
 */
export function beginClaim(schema: string): Statement<{ leaseMs: number }, { newest: string | null }> {
  return statement(
    `SELECT set_config('idle_in_transaction_session_timeout', :leaseMs::text, true), set_config('statement_timeout', :leaseMs::text, true), (SELECT "uuid" FROM ${quoteSchema(schema)}."outbox" ORDER BY "uuid" DESC LIMIT 1) AS "newest"`,
  );
}
