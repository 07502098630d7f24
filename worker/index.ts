/**
 * The delivery worker: drains the outbox to PostHog, scheduled by pg-boss.
 *
 * - A drain queue in pg-boss: every drain pass is a job of it. Its `short` policy keeps at most one pass
 *   queued, however many kicks arrive.
 * - The low-latency kick: while idle, the worker probes "is anything due?" (one index lookup) every 20 ms
 *   after work was found, easing to every 500 ms when there is none (worker/scheduling/idle-probe.ts, worker/scheduling/poll.ts),
 *   and sends a drain job when there is (pg-boss wakes a worker through its own LISTEN/NOTIFY). Handlers'
 *   transactions send no NOTIFY: PostgreSQL serialises the commits of transactions that notify. A job that
 *   has not started a second later was missed (pg-boss's LISTEN connection reconnecting after a PostgreSQL
 *   restart): the worker wakes pg-boss's fetch rather than wait for its 30 s poll.
 * - A scheduled safety-net pass every minute, and a timer for the next row that comes due after a backoff.
 * - A backlog is shared: when a drain loop claims a full batch and PostHog accepts a batch, it queues one
 *   more drain job, which an idle worker picks up (and passes on the same way), so N workers drain a
 *   standing backlog together rather than one of them draining it while the others wait for a commit.
 * - After a pass that ended on a passing PostHog failure the worker pauses, longer after each failed pass in
 *   a row (exponential backoff with jitter): while it is paused, no kick, scheduled pass or timer starts a
 *   pass, and the pass after the pause is a one-lane probe (worker/claim/pass.ts).
 *
 * The worker's states (fields of `Worker`, worker/scheduling/worker.ts), and what moves it between them:
 *
 *   idle      no pass, not paused. The idle probe (`IdleProbe`, worker/scheduling/idle-probe.ts) and the next-due timer
 *             (`armTimer`) call `kick()`, which sends a drain job (`kicking` while the send is out), then
 *             wakes pg-boss's fetch if no pass has started a second later (`expectJob`).
 *   running   pg-boss called `drainJob()`: `running` holds the drain loop, which runs `DrainPass`s back to
 *             back while rows are due (`pending`: a kick arrived meanwhile, so loop once more). A pass that
 *             claims a full batch calls `onBacklog` once, which sends one more drain job for another worker.
 *   paused    a pass ended on a target failure: `pausedUntil` is set (growing with `failedPasses`), kicks only
 *             set `pending`, and `wakeAt(pausedUntil)` kicks once the pause is over; the next pass is a probe.
 *   stopping  `stop()` aborted `abort`: nothing new starts, the running loop finishes (or its connections are
 *             closed after the timeout, giving its rows back), then pg-boss and the pool close.
 *
 * The data path, module by module: `startWorker` (here; its steps in worker/lifecycle/lifecycle.ts) -> `Worker`
 * (worker/scheduling/worker.ts: kick, drain job, drain loop, pause, stop) -> `DrainPass` (worker/claim/pass.ts: lanes and
 * claims) -> one batch (worker/settle/batch.ts: which rows go out (worker/claim/rows.ts), posthog-node (worker/send/sender.ts),
 * bisection and the verdicts (worker/send/outcome.ts)) -> the writes that settle each row and the pass's counters
 * (worker/settle/ledger.ts, re-identification in src/identify/memory.ts). Beside it: what the worker knows of its
 * target (worker/health/target.ts), dead-letter retention (worker/scheduling/retention.ts), `/healthz` and `/metrics`
 * (worker/health/http.ts, worker/health/metrics.ts).
 *
 * Everything a worker is built from (settings, connections, the metrics hook, the health server) is ready
 * before it is constructed; nothing is set on it from outside afterwards.
 *
 * Embed it with `startWorker(options)` on a database `migrate()` (from `posthog-outbox`) or `posthog-outbox
 * migrate` has prepared, or run `posthog-outbox worker`.
 */
import { refuseTransactionPooler } from '../src/connection/pooler.ts';
import { abortable } from './lifecycle/abortable.ts';
import { WorkerDatabase } from './lifecycle/database.ts';
import type { HealthServer } from './health/http.ts';
import { abandonStart, checkInstalled, createBoss, createWorkerPool, type Opened, serveHealth, startFailure } from './lifecycle/lifecycle.ts';
import { createMetrics } from './health/metrics.ts';
import { drainQueueName } from '../src/outbox/queue.ts';
import type { CaptureMode } from './send/sender.ts';
import { resolveSettings } from './settings/settings.ts';
import { DrainHealth, TargetHealth } from './health/target.ts';
import type { Logger, OutboxWorker, WorkerOptions } from './types.ts';
import { Worker } from './scheduling/worker.ts';

export { ignorePostgresStrayError } from './lifecycle/stray-errors.ts';
export type { DrainState, Logger, OutboxWorker, PassStats, TargetState, WorkerOptions } from './types.ts';

const silent: Logger = { info() {}, warn() {}, error() {} };

/**
 * `POSTHOG_CAPTURE_MODE` (posthog-node's own switch, which the CLI reads as `--capture-mode`'s variable) is the
 * `posthog.captureMode` setting of an embedded worker too when its options leave it unset: whoever set it in
 * the process asked for that protocol. An unknown value is refused by the resolver, naming the setting.
 */
function withCaptureModeFromEnv(options: WorkerOptions): WorkerOptions {
  const fromEnv = process.env.POSTHOG_CAPTURE_MODE;
  if (options.posthog?.captureMode !== undefined || fromEnv === undefined || fromEnv === '') return options;
  return { ...options, posthog: { ...options.posthog, captureMode: fromEnv as CaptureMode } };
}

/**
 * Starts a worker: connects (throwing a clear error, with the password masked, if the database is
 * unreachable or not migrated, and OutboxError `databaseUrl` if it is a transaction-mode pooler), registers
 * the drain queue's handler and schedule, and starts the idle probe. `options.signal` cancels a start.
 */
export async function startWorker(options: WorkerOptions): Promise<OutboxWorker> {
  const settings = resolveSettings(withCaptureModeFromEnv(options));
  const log = options.logger ?? silent;
  const database = new WorkerDatabase(() => createWorkerPool(options.databaseUrl, settings));
  const sql = database.sql;
  const opened: Opened = { sql };
  const step = <T>(work: Promise<T>) => abortable(work, options.signal);
  try {
    options.signal?.throwIfAborted();
    await step(refuseTransactionPooler(options.databaseUrl, 'databaseUrl'));
    await step(checkInstalled(sql, settings.schema));
    const boss = createBoss(options.databaseUrl, log);
    opened.boss = boss;
    await step(boss.start());
    const queue = drainQueueName(settings.schema);
    const target = new TargetHealth(sql, settings.schema, log);
    const drainHealth = new DrainHealth(sql, settings.schema, log);
    const metrics = settings.metrics ? createMetrics(sql, settings.schema, target.state) : undefined;
    let health: HealthServer | undefined;
    if (metrics && settings.metrics) {
      const drain = async () => drainHealth.check(settings.unhealthyAfterMs);
      const server = await step(serveHealth(settings.metrics, metrics, { sql, schema: settings.schema, boss, queue, log, drain }));
      opened.closeHealth = () => server.close();
      health = server;
    }
    const worker = new Worker({
      database,
      boss,
      settings,
      observeRequest: metrics?.observeRequest,
      log,
      target,
      drainHealth,
      healthUrl: health?.url,
      closers: opened.closeHealth ? [opened.closeHealth] : [],
    });
    if (metrics) {
      worker.on('pass', metrics.observePass);
      worker.on('failedPass', metrics.observeFailedRun);
    }
    await step(boss.schedule(queue, settings.safetyNetCron, null));
    await step(boss.work(queue, { localConcurrency: 1, pollingIntervalSeconds: 2 }, () => worker.drainJob()));
    options.signal?.throwIfAborted();
    // Whatever is already due is found by the probe's first look (20 ms on): a starting worker runs no claim
    // when nothing is due, however many rows wait for later (a claim would walk past them all).
    worker.startPolling();
    return worker;
  } catch (error) {
    await abandonStart(opened);
    throw startFailure(error, options);
  }
}
