/**
 * The delivery worker: drains the outbox to PostHog, scheduled by pg-boss.
 *
 * - A drain queue in pg-boss: every drain run is a job of it. Its `short` policy keeps at most one run
 *   queued, however many kicks arrive.
 * - The low-latency kick: while idle, the worker probes "is anything due?" (one index lookup) every 20 ms
 *   after work was found, easing to every 500 ms when there is none (worker/poll.ts), and sends a drain job
 *   when there is (pg-boss wakes a worker through its own LISTEN/NOTIFY). Handlers' transactions send no
 *   NOTIFY: PostgreSQL serialises the commits of transactions that notify.
 * - A scheduled safety-net run every minute, and a timer for the next row that comes due after a backoff.
 * - A backlog is shared: when a drain loop claims a full batch and PostHog accepts a batch, it queues one
 *   more drain job, which an idle worker picks up (and passes on the same way), so N workers drain a
 *   standing backlog together rather than one of them draining it while the others wait for a commit.
 * - After a run that ended on a passing PostHog failure the worker pauses, longer after each failed run in
 *   a row (exponential backoff with jitter): while it is paused, no kick, scheduled run or timer starts a
 *   run, and the run after the pause is a one-lane probe (worker/drain.ts).
 *
 * The worker's states (fields of `Worker`), and what moves it between them:
 *
 *   idle      no run, not paused. The idle probe (`startPolling`) and the next-due timer (`armTimer`) call
 *             `kick()`, which sends a drain job (`kicking` while the send is out).
 *   running   pg-boss called `drainJob()`: `running` holds the drain loop, which runs `DrainRun`s back to
 *             back while rows are due (`pending`: a kick arrived meanwhile, so loop once more). A run that
 *             claims a full batch calls `onBacklog` once, which sends one more drain job for another worker.
 *   paused    a run ended on a target failure: `pausedUntil` is set (growing with `failedRuns`), kicks only
 *             set `pending`, and `wakeAt(pausedUntil)` kicks once the pause is over; the next run is a probe.
 *   stopping  `stop()` aborted `abort`: nothing new starts, the running loop finishes (or its connections are
 *             closed after the timeout, giving its rows back), then pg-boss and the pool close.
 *
 * Everything a worker is built from (settings, connections, the metrics hook, the health server) is ready
 * before it is constructed; nothing is set on it from outside afterwards.
 *
 * Embed it with `startWorker(options)`, or run `posthog-outbox worker`.
 */
import { EventEmitter } from 'node:events';
import { PgBoss } from 'pg-boss';
import postgres from 'postgres';
import { redactUrl } from '../src/config.ts';
import * as q from '../src/sql/index.ts';
import { retryDelayMs, type BackoffPolicy } from './backoff.ts';
import { DrainRun, type DrainSettings, RUN_COUNTERS, type RunStats, type TargetMemory, zeroCounters } from './drain.ts';
import { startHealthServer } from './http.ts';
import { DEFAULT_POLL, nextPollDelay } from './poll.ts';
import { createMetrics } from './metrics.ts';
import { refuseTransactionPooler } from '../src/pooler.ts';
import { abortable } from './abortable.ts';
import { drainQueueName, PGBOSS_SCHEMA } from './queue.ts';
import type { PostHogTarget } from './sender.ts';
import { resolveSettings, type SettingsInput, type WorkerSettings } from './settings.ts';

/** The subset of a pino logger the worker uses. */
export interface Logger {
  info(object: object, message?: string): void;
  warn(object: object, message?: string): void;
  error(object: object, message?: string): void;
}

/** What a worker is started with: its settings (worker/settings.ts has their defaults and rules), its database and hooks. */
export interface WorkerOptions extends SettingsInput {
  /**
   * A direct connection, or a session-mode pooler: the worker holds row locks across a PostHog request and
   * runs pg-boss, so a transaction-mode pooler (PgBouncer, Supavisor, Neon's pooled endpoint) is refused.
   */
  databaseUrl: string;
  /**
   * Aborting it while `startWorker` is still starting (a deploy that cancels the new process) stops what
   * has started and makes `startWorker` reject with an `AbortError`.
   */
  signal?: AbortSignal;
  /** Serve `/healthz` and `/metrics` (Prometheus) on this port (0: any free port). Default: not served. */
  metrics?: { port: number; host?: string };
  logger?: Logger;
}

/** The PostHog target as this worker sees it. */
export interface TargetState {
  /** Since when every run has ended on a target failure; null while PostHog accepts. */
  failingSince: Date | null;
  /** The last failure (redacted), while failing. */
  reason: string | null;
}

export interface OutboxWorker extends EventEmitter<{ run: [RunStats] }> {
  /** Sums over every run so far. */
  readonly totals: Omit<RunStats, 'durationMs' | 'more' | 'pauseMs' | 'error'> & { runs: number };
  /** Whether PostHog is failing, as of this worker's last run. */
  readonly target: TargetState;
  /** Asks for a drain run now (e.g. right after your own commit, to skip the wait for the next probe). */
  kick(): void;
  /** Where `/healthz` and `/metrics` are served, when `metrics` was given. */
  readonly healthUrl: string | undefined;
  /**
   * Stops claiming, lets the batches in flight finish (giving them back if they take longer than
   * `timeoutMs`), stops pg-boss and closes the connections.
   */
  stop(timeoutMs?: number): Promise<void>;
}

/** How often a worker looks for expired dead letters. */
const RETENTION_CHECK_MS = 3_600_000;

const silent: Logger = { info() {}, warn() {}, error() {} };

/** What a worker is built from, all of it ready before it is constructed (nothing is set on it afterwards). */
interface WorkerParts {
  sql: postgres.Sql;
  boss: PgBoss;
  settings: Readonly<WorkerSettings>;
  /** The drain runs' hook for each PostHog request (the metrics). */
  observeRequest?: DrainSettings['observeRequest'];
  log: Logger;
  target: TargetState;
  healthUrl?: string;
  /** Closed by stop(), after the last run. */
  closers: (() => Promise<void>)[];
}

class Worker extends EventEmitter<{ run: [RunStats] }> implements OutboxWorker {
  readonly totals = { runs: 0, ...zeroCounters() };
  readonly target: TargetState;
  /** Shared by this worker's runs: when PostHog last accepted one of its requests. */
  private readonly memory: TargetMemory = { lastAcceptedAt: null };
  private retentionCheckedAt = 0;
  /** Whether target_health may say "failing" because of us (or we have not said "working" since start). */
  private healthDirty = true;
  private readonly abort = new AbortController();
  private current: DrainRun | undefined;
  private running: Promise<void> | undefined;
  private pending = false;
  private kicking = false;
  private pausedUntil = 0;
  /** Runs in a row that ended on a passing PostHog failure: the pause before the next run grows with it. */
  private failedRuns = 0;
  private timer: NodeJS.Timeout | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private pollDelay = DEFAULT_POLL.minMs;
  /** Rows claimed by the current drain loop (a loop that found nothing lets the probe slow down). */
  private claimedInLoop = 0;
  private readonly sql: postgres.Sql;
  private readonly boss: PgBoss;
  private readonly settings: Readonly<WorkerSettings>;
  /** What each drain run is given: the settings and the metrics' request hook. */
  private readonly drain: DrainSettings;
  private readonly queue: string;
  private readonly log: Logger;
  readonly healthUrl: string | undefined;
  private readonly closers: readonly (() => Promise<void>)[];

  constructor(parts: WorkerParts) {
    super();
    this.sql = parts.sql;
    this.boss = parts.boss;
    this.settings = parts.settings;
    this.drain = { ...parts.settings, observeRequest: parts.observeRequest };
    this.queue = drainQueueName(parts.settings.schema);
    this.log = parts.log;
    this.target = parts.target;
    this.healthUrl = parts.healthUrl;
    this.closers = parts.closers;
  }

  /** The idle probe found due rows, the next-due timer fired, or an embedding application asks. */
  kick(): void {
    if (this.abort.signal.aborted) return;
    if (this.running || Date.now() < this.pausedUntil) {
      this.pending = true; // the current run goes on, or the pause timer fires a run
      if (!this.running && this.timer === undefined) this.wakeAt(this.pausedUntil);
      return;
    }
    if (this.kicking) return;
    this.kicking = true;
    this.boss
      .send(this.queue, null)
      .catch((error: unknown) => this.log.error({ err: String(error) }, 'could not queue a drain run'))
      .finally(() => (this.kicking = false));
  }

  /** The pg-boss job handler: runs until nothing is due (or PostHog fails), then arms the next-due timer. */
  async drainJob(): Promise<void> {
    if (this.running || this.abort.signal.aborted) return this.running;
    if (Date.now() < this.pausedUntil) return;
    this.running = this.drainLoop()
      .then(() => this.expireDeadLetters())
      .finally(() => (this.running = undefined));
    return this.running;
  }

  /** Deletes dead letters past their retention, in bounded statements, at most once an hour. */
  private async expireDeadLetters(): Promise<void> {
    const retentionMs = this.settings.deadLetterRetentionMs;
    if (retentionMs === 0 || this.abort.signal.aborted || Date.now() - this.retentionCheckedAt < RETENTION_CHECK_MS) return;
    this.retentionCheckedAt = Date.now();
    let total = 0;
    try {
      for (;;) {
        const [row] = await this.sql.unsafe<{ count: number }[]>(q.expireDeadLetters(this.settings.schema), [retentionMs, 10_000]);
        total += row!.count;
        if (row!.count < 10_000 || this.abort.signal.aborted) break;
      }
    } catch (error) {
      this.log.warn({ err: String((error as Error)?.message ?? error) }, 'could not delete expired dead letters');
    }
    if (total > 0) this.log.info({ deleted: total, retentionDays: retentionMs / 86_400_000 }, 'deleted dead letters past their retention');
  }

  /**
   * The idle probe: while no run is going and the worker is not paused, asks whether anything is due and
   * kicks a run if so. Fast after runs that found work, slower while nothing turns up.
   */
  startPolling(): void {
    const tick = async () => {
      this.pollTimer = undefined;
      if (this.abort.signal.aborted) return;
      if (!this.running && !this.kicking && Date.now() >= this.pausedUntil) {
        try {
          const [row] = await this.sql.unsafe<{ due: boolean }[]>(q.anyDue(this.settings.schema), [], { prepare: true });
          if (row?.due) this.kick();
          else this.pollDelay = nextPollDelay(this.pollDelay, false);
        } catch (error) {
          this.pollDelay = DEFAULT_POLL.maxMs;
          this.log.warn({ err: String((error as Error)?.message ?? error) }, 'the idle probe failed; trying again');
        }
      }
      if (!this.abort.signal.aborted) this.pollTimer = setTimeout(() => void tick(), this.pollDelay);
    };
    this.pollTimer = setTimeout(() => void tick(), this.pollDelay);
  }

  private async drainLoop(): Promise<void> {
    this.claimedInLoop = 0;
    let invited = false;
    const invite = () => {
      // One job per loop: pg-boss hands it to an idle worker (or back to this one once its loop ends, when
      // it finds nothing due and ends at once).
      if (invited || this.abort.signal.aborted) return;
      invited = true;
      this.boss.send(this.queue, null).catch((error: unknown) => this.log.error({ err: String(error) }, 'could not queue a drain run'));
    };
    try {
      let stats: RunStats;
      do {
        this.pending = false;
        this.current = new DrainRun(this.sql, this.drain, this.abort.signal, { probe: this.failedRuns > 0, onBacklog: invite, memory: this.memory });
        stats = await this.current.run();
        this.current = undefined;
        this.account(stats);
        if (stats.pauseMs !== undefined) {
          // Backoff per worker, not only per row: during an outage each run meets fresh rows (first attempt,
          // shortest delay), so without this an outage would cost a request per batch of backlog.
          this.failedRuns++;
          this.pausedUntil = Date.now() + Math.max(stats.pauseMs, retryDelayMs(this.failedRuns, this.settings.backoff));
          await this.targetFailing(stats.error ?? 'unknown target failure');
          break;
        }
        if (stats.delivered > 0) {
          if (this.failedRuns > 0) {
            // PostHog is back: what waited out a backoff during the failure is due now.
            await this.sql.unsafe(q.resumeWaitingRows(this.settings.schema));
            this.pending = true;
          }
          this.failedRuns = 0;
          await this.targetWorking();
        }
      } while (!this.abort.signal.aborted && (stats.more || stats.identified > 0 || this.pending));
    } finally {
      this.current = undefined;
    }
    // A loop that claimed rows means traffic: probe again soon. One that claimed nothing (the rows the probe
    // saw were held by another worker) lets the probe slow down.
    this.pollDelay = nextPollDelay(this.pollDelay, this.claimedInLoop > 0);
    if (!this.abort.signal.aborted) await this.armTimer();
  }

  private async targetFailing(reason: string): Promise<void> {
    const first = this.target.failingSince === null;
    this.target.failingSince ??= new Date();
    this.target.reason = reason;
    this.healthDirty = true;
    if (first)
      this.log.error(
        { reason, since: this.target.failingSince.toISOString() },
        'PostHog target failing: nothing is delivered or dead-lettered until it recovers',
      );
    await this.sql
      .unsafe(q.markTargetFailing(this.settings.schema), [reason])
      .catch((error: unknown) => this.log.warn({ err: String(error) }, 'could not record the target failure'));
  }

  private async targetWorking(): Promise<void> {
    if (this.target.failingSince !== null) {
      this.log.info({ since: this.target.failingSince.toISOString(), reason: this.target.reason }, 'PostHog target recovered');
      this.target.failingSince = null;
      this.target.reason = null;
    }
    if (!this.healthDirty) return;
    this.healthDirty = false;
    await this.sql.unsafe(q.markTargetWorking(this.settings.schema)).catch((error: unknown) => {
      this.healthDirty = true;
      this.log.warn({ err: String(error) }, 'could not record the target recovery');
    });
  }

  private account(stats: RunStats): void {
    this.totals.runs++;
    this.claimedInLoop += stats.claimed;
    for (const key of RUN_COUNTERS) this.totals[key] += stats[key];
    if (stats.claimed > 0 || stats.identified > 0) {
      const { more: _more, ...line } = stats;
      this.log.info({ ...line }, 'drain run');
    }
    this.emit('run', stats);
  }

  /** Wakes the worker when the next row comes due (after a backoff, a lease, or a pause). */
  private async armTimer(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const [row] = await this.sql.unsafe<{ at: Date | null }[]>(q.nextDue(this.settings.schema));
    const now = Date.now();
    let wakeAt = row?.at ? row.at.getTime() : Number.POSITIVE_INFINITY;
    if (this.pending) wakeAt = now;
    wakeAt = Math.max(wakeAt, this.pausedUntil);
    if (!Number.isFinite(wakeAt)) return; // empty outbox: the idle probe finds the next commit
    this.wakeAt(wakeAt);
  }

  /**
   * Kicks a run at `at`; if the worker is still paused then, waits on until the pause is over. Timers are
   * capped at a minute and re-armed.
   */
  private wakeAt(at: number): void {
    clearTimeout(this.timer);
    const delay = Math.min(Math.max(0, at - Date.now()), 60_000);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.abort.signal.aborted) return;
      if (!this.running && Date.now() < this.pausedUntil) {
        // Still paused (a pause longer than the cap, or a timer that fired a hair early): wait on. A kick that
        // came during the pause (pending) runs after it; otherwise the next due row decides.
        if (this.pending) this.wakeAt(this.pausedUntil);
        else this.armTimer().catch((error: unknown) => this.log.error({ err: String(error) }, 'could not arm the next-run timer'));
        return;
      }
      this.pending = false;
      this.kick();
    }, delay);
  }

  async stop(timeoutMs = 20_000): Promise<void> {
    if (this.abort.signal.aborted) return;
    this.abort.abort();
    clearTimeout(this.timer);
    clearTimeout(this.pollTimer);
    this.timer = undefined;
    const running = this.running;
    if (running) {
      let timedOut = false;
      await Promise.race([running.catch(() => undefined), new Promise((r) => setTimeout(r, timeoutMs).unref())]).then(() => {
        timedOut = this.running !== undefined;
      });
      if (timedOut) {
        // Give the rows back rather than wait out the lease: closing the connections rolls back the batches'
        // transactions. A batch that still lands is a same-uuid duplicate.
        await this.sql.end({ timeout: 0 }).catch(() => undefined);
        this.log.warn({}, 'stopped before in-flight batches finished; their rows were released');
      }
    }
    for (const close of this.closers) await close().catch(() => undefined);
    await this.boss.stop({ graceful: false, close: true, timeout: 2_000 }).catch(() => undefined);
    await this.sql.end({ timeout: 5 }).catch(() => undefined);
  }
}

/**
 * Starts a worker: connects (throwing a clear error, with the password masked, if the database is
 * unreachable or not migrated, and OutboxError `databaseUrl` if it is a transaction-mode pooler), registers
 * the drain queue's handler and schedule, and starts the idle probe. `options.signal` cancels a start.
 */
export async function startWorker(options: WorkerOptions): Promise<OutboxWorker> {
  const settings = resolveSettings(options);
  const log = options.logger ?? silent;
  // Each lane holds a connection for its batch's transaction.
  const sql = postgres(options.databaseUrl, {
    max: settings.concurrency + 2,
    connect_timeout: 10,
    onnotice: () => {},
    connection: { application_name: 'posthog-outbox worker' },
  });
  let boss: PgBoss | undefined;
  let closeHealth: (() => Promise<void>) | undefined;
  const step = <T>(work: Promise<T>) => abortable(work, options.signal);
  try {
    options.signal?.throwIfAborted();
    await step(refuseTransactionPooler(options.databaseUrl, 'databaseUrl'));
    const [migrated] = await step(sql.unsafe<{ ok: boolean }[]>(q.installed(), [`${settings.schema}.outbox`, PGBOSS_SCHEMA]));
    if (!migrated?.ok) throw new Error(`the outbox schema "${settings.schema}" or pg-boss's schema is missing: run \`posthog-outbox migrate\` first`);
    boss = new PgBoss({
      connectionString: options.databaseUrl,
      schema: PGBOSS_SCHEMA,
      useListenNotify: true,
      migrate: false,
      createSchema: false,
      max: 3,
      application_name: 'posthog-outbox worker (pg-boss)',
    });
    boss.on('error', (error: unknown) => log.error({ err: String((error as Error)?.message ?? error) }, 'pg-boss error'));
    await step(boss.start());
    const queue = drainQueueName(settings.schema);
    const target: TargetState = { failingSince: null, reason: null };
    const metrics = options.metrics ? createMetrics(sql, settings.schema, target) : undefined;
    let healthUrl: string | undefined;
    if (metrics && options.metrics) {
      const readyBoss = boss;
      const server = await step(
        startHealthServer({
          port: options.metrics.port,
          host: options.metrics.host ?? '0.0.0.0',
          registry: metrics.registry,
          checks: { database: () => sql.unsafe(q.ping()), pgboss: () => readyBoss.getQueue(queue) },
          onCheckFailed: (check, error) => log.warn({ check, err: String((error as Error)?.message ?? error) }, 'health check failed'),
        }),
      );
      healthUrl = server.url;
      closeHealth = () => server.close();
    }
    const worker = new Worker({
      sql,
      boss,
      settings,
      observeRequest: metrics?.observeRequest,
      log,
      target,
      healthUrl,
      closers: closeHealth ? [closeHealth] : [],
    });
    if (metrics) worker.on('run', metrics.observeRun);
    await step(boss.schedule(queue, settings.safetyNetCron, null));
    await step(boss.work(queue, { localConcurrency: 1, pollingIntervalSeconds: 2 }, () => worker.drainJob()));
    options.signal?.throwIfAborted();
    worker.startPolling();
    worker.kick(); // whatever is already due
    return worker;
  } catch (error) {
    await closeHealth?.().catch(() => undefined);
    // A pg-boss still starting (waiting on a lock) is not waited for: its stop waits for its start.
    const stopBoss = boss?.stop({ graceful: false, close: true, timeout: 1_000 }).catch(() => undefined);
    await Promise.race([stopBoss, new Promise((r) => setTimeout(r, 2_000).unref())]);
    await sql.end({ timeout: 1 }).catch(() => undefined);
    if (options.signal?.aborted) throw options.signal.reason;
    const e = error as { code?: string; message?: string };
    if (e?.code && /^(ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EHOSTUNREACH|CONNECT_TIMEOUT|28P01|3D000)$/.test(e.code)) {
      throw new Error(`cannot reach the database at ${redactUrl(options.databaseUrl)}: ${e.code} ${e.message ?? ''}`.trim());
    }
    throw error;
  }
}
