/**
 * The worker's states and what moves it between them (worker/index.ts describes them): `kick()` queues a
 * drain job, pg-boss calls `drainJob()`, whose drain loop runs `DrainPass`s back to back while rows are due
 * and pauses the worker after a pass that ended on a target failure; the next-due timer and the idle probe
 * kick again; `stop()` ends it all.
 */
import { EventEmitter } from 'node:events';
import type { PgBoss } from 'pg-boss';
import type postgres from 'postgres';
import { query } from '../../src/sql/statement.ts';
import * as q from './due.sql.ts';
import { isPostgresConnectionLoss } from '../../src/connection/postgres-workaround.ts';
import type { WorkerDatabase } from '../lifecycle/database.ts';
import { NoAnswer, within } from './deadline.ts';
import { DrainPass } from '../claim/pass.ts';
import { IdleProbe } from './idle-probe.ts';
import { databaseReason, PASS_COUNTERS, zeroCounters } from '../settle/ledger.ts';
import { closeAll, finishOrRelease } from '../lifecycle/lifecycle.ts';
import { drainQueueName } from '../../src/outbox/queue.ts';
import { DeadLetterRetention } from './retention.ts';
import type { DrainSettings, WorkerSettings } from '../settings/settings.ts';
import type { DrainHealth, TargetHealth } from '../health/target.ts';
import type { DrainState, Logger, OutboxWorker, PassStats, TargetState } from '../types.ts';
import { BoundedSet } from '../settle/bounded-set.ts';
import { Pauses } from './pauses.ts';

/** Accepted-but-unsettled uuids a worker remembers at most (~100 bytes each; a lost batch leaves a batch's worth). */
const UNSETTLED_LIMIT = 100_000;

/** What a worker is built from, all of it ready before it is constructed (nothing is set on it afterwards). */
export interface WorkerParts {
  /** The worker's pool, replaced after a pass that lost its connection or stalled. */
  database: WorkerDatabase;
  boss: PgBoss;
  settings: Readonly<WorkerSettings>;
  /** The drain passes' hook for each PostHog request (the metrics). */
  observeRequest?: DrainSettings['observeRequest'];
  log: Logger;
  target: TargetHealth;
  /** Whether drain passes fail for a reason other than PostHog (shared with `/healthz`). */
  drainHealth: DrainHealth;
  healthUrl?: string;
  /** Closed by stop(), after the last pass. */
  closers: (() => Promise<void>)[];
}

/** A queued drain job starts within milliseconds of its NOTIFY; one not started by then was missed (`expectJob`). */
export const JOB_START_MS = 1_000;

export class Worker extends EventEmitter<{ pass: [PassStats]; failedPass: [string] }> implements OutboxWorker {
  readonly totals = { passes: 0, ...zeroCounters() };
  readonly target: TargetState;
  readonly drainState: DrainState;
  private readonly abort = new AbortController();
  /** The drain loop, while one passes. */
  private running: Promise<void> | undefined;
  /** A kick arrived while a pass was going or the worker was paused: run (once more) when it can. */
  private pending = false;
  /** A drain job is being queued. */
  private kicking = false;
  /** When the worker may run again after failed passes (worker/scheduling/pauses.ts). */
  private readonly pauses: Pauses;
  /**
   * Uuids PostHog accepted whose batch transaction was lost before it committed (worker/settle/batch.ts): settled as
   * delivered when claimed again, not sent again. Bounded: past UNSETTLED_LIMIT the oldest are forgotten.
   */
  private readonly unsettled = new BoundedSet(UNSETTLED_LIMIT);
  /** The next-due (or end-of-pause) timer. */
  private timer: NodeJS.Timeout | undefined;
  /** Set from a queued drain job until `JOB_START_MS` later (`expectJob`). */
  private jobWait: NodeJS.Timeout | undefined;
  private readonly idleProbe: IdleProbe;
  private readonly retention: DeadLetterRetention;
  private readonly targetHealth: TargetHealth;
  private readonly database: WorkerDatabase;
  private readonly sql: postgres.Sql;
  private readonly boss: PgBoss;
  private readonly settings: Readonly<WorkerSettings>;
  /** What each drain pass is given: the settings and the metrics' request hook. */
  private readonly drain: DrainSettings;
  private readonly queue: string;
  private readonly log: Logger;
  readonly healthUrl: string | undefined;
  private readonly closers: readonly (() => Promise<void>)[];

  constructor(parts: WorkerParts) {
    super();
    this.database = parts.database;
    this.sql = parts.database.sql;
    this.boss = parts.boss;
    this.settings = parts.settings;
    this.drain = {
      ...parts.settings,
      observeRequest: parts.observeRequest,
      // Once per batch: PostHog kept these events, but said something about them worth seeing.
      onWarnings: ({ message, details, uuids }) => parts.log.warn({ details, uuids: uuids.slice(0, 10), warned: uuids.length }, message),
    };
    this.queue = drainQueueName(parts.settings.schema);
    this.log = parts.log;
    this.targetHealth = parts.target;
    this.target = parts.target.state;
    this.pauses = new Pauses(parts.settings.backoff, parts.target, parts.drainHealth);
    this.drainState = parts.drainHealth.state;
    this.healthUrl = parts.healthUrl;
    this.closers = parts.closers;
    this.retention = new DeadLetterRetention(this.sql, parts.settings, this.abort.signal, parts.log);
    this.idleProbe = new IdleProbe(this.sql, parts.settings.schema, parts.log, {
      signal: this.abort.signal,
      idle: () => !this.running && !this.kicking && !this.pauses.paused,
      kick: () => this.kick(),
      stalled: () => this.renewPool(),
    });
  }

  /** The idle probe found due rows, the next-due timer fired, or an embedding application asks. */
  kick(): void {
    if (this.abort.signal.aborted) return;
    if (this.running || this.pauses.paused) {
      this.pending = true; // the current pass goes on, or the pause timer fires a pass
      if (!this.running && this.timer === undefined) this.wakeAt(this.pauses.until);
      return;
    }
    if (this.kicking) return;
    this.kicking = true;
    // bounded: a send that never settles (pg-boss's connection gone silent) would leave `kicking` set for good
    within(this.boss.send(this.queue, null), 'queuing a drain pass')
      .then(() => this.expectJob())
      .catch((error: unknown) => this.log.error({ err: String(error) }, 'could not queue a drain pass'))
      .finally(() => (this.kicking = false));
  }

  /**
   * A drain job was queued: if no pass has started `JOB_START_MS` later, pg-boss missed its NOTIFY (its LISTEN
   * connection reconnects after a PostgreSQL restart with a backoff growing to 30 s, and it polls every 30 s
   * meanwhile: test/reliability/restart-wakeup.test.ts), so it is woken to fetch now. The job stays the only
   * way a pass starts, so workers still share a backlog through it. Armed once per wait.
   */
  private expectJob(): void {
    if (this.jobWait !== undefined || this.abort.signal.aborted) return;
    const runs = this.totals.passes;
    this.jobWait = setTimeout(() => {
      this.jobWait = undefined;
      if (this.abort.signal.aborted || this.running || this.totals.passes !== runs) return; // a pass started
      for (const worker of this.boss.getWipData()) if (worker.name === this.queue) this.boss.notifyWorker(worker.id);
    }, JOB_START_MS);
  }

  /** The pg-boss job handler: runs until nothing is due (or PostHog fails), then arms the next-due timer. */
  async drainJob(): Promise<void> {
    if (this.running || this.abort.signal.aborted) return this.running;
    if (this.pauses.paused) return;
    this.running = this.drainLoop()
      .then(() => this.retention.expire())
      .catch((error: unknown) => this.failed(error))
      .finally(() => (this.running = undefined));
    return this.running;
  }

  /**
   * A drain loop failed (its pass, or a statement between runs). Its rows are safe: each batch's transaction
   * commits what it settled or is rolled back (what PostHog accepted of it is remembered: `unsettled`), and
   * pg-boss is told the job failed. The worker backs off before the next pass (worker/scheduling/pauses.ts). A lost
   * connection or a stalled run may have left the pool broken (worker/lifecycle/database.ts): it is replaced first.
   */
  private async failed(error: unknown): Promise<never> {
    if (this.abort.signal.aborted) throw error; // stopping: stop() gives the rows back and says so
    const lost = error instanceof NoAnswer || isPostgresConnectionLoss(error);
    if (lost) this.renewPool();
    const reason = `${lost ? 'the database connection was lost or stopped answering (reconnecting with a fresh pool): ' : ''}${databaseReason(error)}`;
    await this.drainFailed(reason);
    throw error;
  }

  /** A drain pass failed for a reason other than PostHog: the worker pauses, and the metrics count it. */
  private async drainFailed(reason: string): Promise<void> {
    await this.pauses.drainFailed(reason);
    this.emit('failedPass', reason);
  }

  /** Replaces the pool (worker/lifecycle/database.ts), unless the worker is stopping: stop() closes it. */
  private renewPool(): void {
    if (!this.abort.signal.aborted) this.database.renew();
  }

  /** Starts the idle probe (once the drain queue's handler is registered). */
  startPolling(): void {
    this.idleProbe.start();
  }

  private async drainLoop(): Promise<void> {
    let claimed = 0;
    const onBacklog = this.inviter();
    let stats: PassStats;
    do {
      this.pending = false;
      const run = new DrainPass(this.sql, this.drain, this.abort.signal, {
        probe: this.pauses.probing,
        onBacklog,
        memory: this.targetHealth.memory,
        unsettled: this.unsettled,
      });
      try {
        stats = await run.run();
      } catch (error) {
        this.account(run.stats); // what it did before it failed happened (PostHog accepted what it counts as delivered)
        throw error;
      }
      claimed += stats.claimed;
      this.account(stats);
      if (stats.settleError !== undefined) {
        await this.drainFailed(stats.settleError);
        break;
      }
      await this.pauses.drainWorks();
      if (stats.pauseMs !== undefined) {
        await this.pauses.targetFailed(stats.pauseMs, stats.error ?? 'unknown target failure');
        break;
      }
      if (stats.delivered > 0 && (await this.pauses.targetWorks())) {
        // PostHog is back: what waited out a backoff during the failure is due now.
        await within(query(this.sql, q.resumeWaitingRows(this.settings.schema)), 'resuming the rows that waited out a backoff');
        this.pending = true;
      }
    } while (!this.abort.signal.aborted && (stats.more || stats.identified > 0 || this.pending));
    this.idleProbe.loopEnded(claimed > 0);
    if (!this.abort.signal.aborted) await this.armTimer();
  }

  /**
   * The passes' `onBacklog` for one drain loop: sends one drain job per loop, which pg-boss hands to an idle
   * worker (or back to this one once its loop ends, when it finds nothing due and ends at once).
   */
  private inviter(): () => void {
    let invited = false;
    return () => {
      if (invited || this.abort.signal.aborted) return;
      invited = true;
      this.boss.send(this.queue, null).catch((error: unknown) => this.log.error({ err: String(error) }, 'could not queue a drain pass'));
    };
  }

  private account(stats: PassStats): void {
    this.totals.passes++;
    for (const key of PASS_COUNTERS) this.totals[key] += stats[key];
    if (stats.claimed > 0 || stats.identified > 0) {
      const { more: _more, ...line } = stats;
      this.log.info({ ...line }, 'drain pass');
    }
    this.emit('pass', stats);
  }

  /** Wakes the worker when the next row comes due (after a backoff, a lease, or a pause). */
  private async armTimer(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const [row] = await within(query(this.sql, q.nextDue(this.settings.schema)), 'reading when the next row is due');
    const now = Date.now();
    let wakeAt = row?.at ? row.at.getTime() : Number.POSITIVE_INFINITY;
    if (this.pending) wakeAt = now;
    wakeAt = Math.max(wakeAt, this.pauses.until);
    if (!Number.isFinite(wakeAt)) return; // empty outbox: the idle probe finds the next commit
    this.wakeAt(wakeAt);
  }

  /**
   * Kicks a pass at `at`; if the worker is still paused then, waits on until the pause is over. Timers are
   * capped at a minute and re-armed.
   */
  private wakeAt(at: number): void {
    clearTimeout(this.timer);
    const delay = Math.min(Math.max(0, at - Date.now()), 60_000);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.abort.signal.aborted) return;
      if (!this.running && this.pauses.paused) {
        // Still paused (a pause longer than the cap, or a timer that fired a hair early): wait on. A kick that
        // came during the pause (pending) runs after it; otherwise the next due row decides.
        if (this.pending) this.wakeAt(this.pauses.until);
        else this.armTimer().catch((error: unknown) => this.log.error({ err: String(error) }, 'could not arm the next-run timer'));
        return;
      }
      this.pending = false;
      this.kick();
    }, delay);
  }

  async stop(timeoutMs = this.settings.shutdownTimeoutMs): Promise<void> {
    if (this.abort.signal.aborted) return;
    this.abort.abort();
    clearTimeout(this.timer);
    clearTimeout(this.jobWait);
    this.idleProbe.stop();
    this.timer = undefined;
    await finishOrRelease(this.running, () => this.running !== undefined, timeoutMs, this.sql, this.log);
    await closeAll(this.closers, this.boss, this.sql);
  }
}
