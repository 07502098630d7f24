/**
 * One drain pass: lanes claim due rows in batches until nothing is due, the pass's time is up, or PostHog
 * fails; each batch is sent and its every row settled (worker/settle/batch.ts). The pass's counters are its ledger's
 * (worker/settle/ledger.ts).
 *
 * A target failure (outage, 429, timeout, redirect, not PostHog, rejecting broadly) ends the pass: the failed
 * rows wait out their backoff and the worker pauses before the next pass, so an outage costs a bounded number of requests, not one per
 * batch of backlog. From the first such failure on, no lane claims or sends anything more in this pass:
 * a batch a lane had claimed but not sent yet (or the rest of a bisection) is released, its attempt not
 * counted. A pass that follows a failed one is a probe: one lane sends, and the others join only once
 * PostHog has accepted a batch, so while PostHog is down each backoff step costs one request.
 *
 * Several lanes (`concurrency`) claim and send side by side, so one batch is serialised and compressed
 * while another waits on the network or the database. Each batch lives in a transaction of its own: the
 * claim locks its rows with FOR UPDATE SKIP LOCKED (lanes and other workers skip them), and the rows are
 * settled and the locks released by the same transaction. Claimed rows that are not sent are given back by
 * committing without touching them. The lease is the transaction's `idle_in_transaction_session_timeout`:
 * a worker that hangs mid-batch cannot hold its rows longer than that (one that dies frees them at once).
 *
 * A pass whose claim comes back full with events older than `historicalAfterMs` (by their timestamp: they are sent
 * flagged `historical_migration`, worker/send/lanes.ts) has found a backlog: one more lane, the live lane, claims the
 * rows recorded after that moment (from the greatest uuid then) until the other lanes are done, so that events
 * recorded during a long drain go out within a batch or two, not after the backlog.
 *
 * A pass ends when its first lane fails (the others claim nothing more and give back what they have not
 * sent), or with `NoAnswer` (worker/scheduling/deadline.ts) when nothing of it has moved for a lease and a request
 * timeout: no claim, no PostHog answer, no batch settled. That is a connection that stopped answering
 * without closing (a network partition, a broken pool: worker/lifecycle/database.ts), which would otherwise hold the
 * worker's one pass forever; PostgreSQL frees the rows of an idle transaction after the lease anyway.
 */
import type postgres from 'postgres';
import { query } from '../../src/sql/statement.ts';
import * as q from './claim.sql.ts';
import { type BatchPass, settleBatch } from '../settle/batch.ts';
import { watchProgress } from '../scheduling/deadline.ts';
import { isHistorical } from '../send/lanes.ts';
import { type Committed, Ledger } from '../settle/ledger.ts';
import { type ClaimedRow, NIL_UUID, nextClaimStart } from './rows.ts';
import type { DrainSettings } from '../settings/settings.ts';
import type { TargetMemory } from '../health/target.ts';
import type { PassStats } from '../types.ts';

/** How often the live lane looks for rows recorded while the other lanes drain a historical backlog. */
const LIVE_POLL_MS = 100;

export class DrainPass implements BatchPass {
  readonly ledger: Ledger;
  private readonly sql: postgres.Sql;
  readonly settings: DrainSettings;
  private readonly signal: AbortSignal | undefined;
  private readonly probe: boolean;
  readonly memory: TargetMemory;
  private onBacklog: (() => void) | undefined;
  private claimedFull = false;
  /** A request of this pass met a target failure (set before its batch is settled): nothing more is sent. */
  private targetFailing = false;
  private acceptedOne = false;
  /** A lane failed or the pass stalled: the pass is over, the other lanes claim and send nothing more. */
  private abandoned = false;
  private lastProgress = Date.now();
  /** Where the next claim starts among rows never tried (worker/claim/rows.ts, `nextClaimStart`). */
  private readonly cursor = { from: NIL_UUID };
  /** The live lane, once a claim found a backlog of historical events (`openLiveLane`). */
  private liveLane: Promise<void> | undefined;
  /** The other lanes are done: the live lane stops too. */
  private lanesDone = false;
  /** When the pass's lanes stop claiming (the live lane's too). */
  private deadline = 0;
  readonly unsettled: Set<string>;
  /** Resolved when PostHog first accepts a batch in this pass (a probe pass then opens its other lanes). */
  private firstAcceptance!: () => void;
  private readonly firstAccepted = new Promise<void>((resolve) => (this.firstAcceptance = resolve));

  /**
   * `probe`: the previous pass ended on a passing PostHog failure, so this one sends one batch at a time
   * until PostHog accepts one. `onBacklog`: called once, as soon as a claim has come back full (there is a
   * backlog) and PostHog has accepted a batch (it is up), so other workers may join in.
   */
  constructor(
    sql: postgres.Sql,
    settings: DrainSettings,
    signal?: AbortSignal,
    options: { probe?: boolean; onBacklog?: () => void; memory?: TargetMemory; unsettled?: Set<string> } = {},
  ) {
    this.sql = sql;
    this.settings = settings;
    this.ledger = new Ledger(settings);
    this.signal = signal;
    this.probe = options.probe ?? false;
    this.memory = options.memory ?? { lastAcceptedAt: null };
    this.onBacklog = options.onBacklog;
    this.unsettled = options.unsettled ?? new Set();
  }

  get stats(): PassStats {
    return this.ledger.stats;
  }

  private noteBacklog(): void {
    if (!this.onBacklog || !this.claimedFull || !this.acceptedOne) return;
    const call = this.onBacklog;
    this.onBacklog = undefined;
    call();
  }

  /** The pass met a target failure (settled or not yet), or PostgreSQL refused to settle a batch: nothing more is claimed or sent. */
  private get failed(): boolean {
    return this.stats.pauseMs !== undefined || this.targetFailing || this.stats.settleError !== undefined;
  }

  halted(): boolean {
    return this.failed || this.abandoned || (this.signal?.aborted ?? false);
  }

  progressed(): void {
    this.lastProgress = Date.now();
  }

  targetFailed(): void {
    this.targetFailing = true;
  }

  accepted(): void {
    this.memory.lastAcceptedAt = new Date();
    this.acceptedOne = true;
    this.firstAcceptance();
    this.noteBacklog();
  }

  async run(): Promise<PassStats> {
    const started = Date.now();
    const { leaseMs, target } = this.settings;
    const stallMs = leaseMs + target.requestTimeoutMs;
    const watch = watchProgress(() => Date.now() - this.lastProgress, stallMs, 'the drain pass (no claim, PostHog answer or batch settled)');
    try {
      await Promise.race([this.lanes(started + this.settings.maxPassMs), watch.stalled]);
    } catch (error) {
      this.abandoned = true;
      throw error;
    } finally {
      watch.stop();
    }
    this.stats.durationMs = Date.now() - started;
    return this.stats;
  }

  private async lanes(deadline: number): Promise<void> {
    this.deadline = deadline;
    const others = () => Array.from({ length: this.settings.concurrency - 1 }, () => this.lane(deadline, this.cursor));
    try {
      if (!this.probe) {
        await Promise.all([this.lane(deadline, this.cursor), ...others()]);
      } else {
        const first = this.lane(deadline, this.cursor);
        const open = await Promise.race([first.then(() => false), this.firstAccepted.then(() => true)]);
        await Promise.all([first, ...(open && !this.failed ? others() : [])]);
      }
    } finally {
      this.lanesDone = true;
      await this.liveLane;
    }
  }

  /**
   * A claim came back full with events older than `historicalAfterMs` (by their timestamp): a backlog the other
   * lanes take in write order. The rows recorded from now on (after `newest`, the greatest uuid when it was
   * found) are claimed by a lane of their own, until the other lanes are done, so that live events are not held
   * up behind it (worker/send/lanes.ts). Not in a probe pass before PostHog accepted a batch.
   */
  private openLiveLane(rows: readonly ClaimedRow[], newest: string | null): void {
    const { historicalAfterMs } = this.settings;
    if (this.liveLane || this.lanesDone || (this.probe && !this.acceptedOne)) return;
    const now = Date.now();
    if (!rows.some((row) => isHistorical(row.timestamp, now, historicalAfterMs))) return;
    this.liveLane = this.lane(this.deadline, { from: newest ?? NIL_UUID }, true);
  }

  /** Claims up to a batch of rows in `tx` (fewer past the claim's byte budget), starting at `cursor` among rows never tried. */
  private async claim(tx: postgres.TransactionSql, cursor: { from: string }, live: boolean): Promise<{ rows: ClaimedRow[]; full: boolean }> {
    const { schema, batchSize, leaseMs } = this.settings;
    // pipelined: one round trip
    const [[begun], rows] = await Promise.all([
      query(tx, q.beginClaim(schema), { leaseMs }, { prepare: true }),
      query(tx, q.claimBatch(schema), { batchSize, maxAgeMs: this.settings.maxAgeMs, from: cursor.from }, { prepare: true }),
    ]);
    this.progressed();
    cursor.from = nextClaimStart(cursor.from, { limit: batchSize, rows, newest: begun?.newest ?? null });
    // Full: as many rows as asked for were due, or the byte budget held some back.
    const full = rows.length > 0 && (rows.length === batchSize || rows[0]!.locked > rows.length);
    if (full) {
      this.claimedFull = true;
      this.noteBacklog();
      if (!live && this.settings.historicalAfterMs > 0) this.openLiveLane(rows, begun?.newest ?? null);
    }
    this.stats.claimed += rows.length;
    return { rows: [...rows], full };
  }

  /**
   * Claims batch after batch, each in a transaction of its own, until a claim comes back short or the pass ends.
   * The live lane (`live`) waits LIVE_POLL_MS after a short claim and claims again, until the other lanes are done.
   */
  private async lane(deadline: number, cursor: { from: string }, live = false): Promise<void> {
    for (;;) {
      if (this.failed || this.abandoned || (live && this.lanesDone)) return;
      if (this.signal?.aborted || Date.now() >= deadline) {
        this.stats.more = true;
        return;
      }
      let committed: Committed | undefined;
      const full = await this.sql.begin(async (tx) => {
        const { rows, full } = await this.claim(tx, cursor, live);
        committed = await settleBatch(tx, rows, this);
        return full;
      });
      committed?.();
      this.progressed();
      if (!full && !live) return;
      if (!full) await new Promise((resolve) => setTimeout(resolve, LIVE_POLL_MS));
    }
  }
}
