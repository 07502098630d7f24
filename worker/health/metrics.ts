/**
 * Prometheus metrics of one worker process (prom-client): what it delivered, retried, dead-lettered and
 * identified, how long PostHog requests took, and, read from the database at each scrape, the backlog,
 * the oldest undelivered event's age and the dead letters.
 *
 * A scrape stays cheap however big the backlog (every worker is scraped, every 15-60 s): the tables are
 * counted only up to `COUNT_CAP` rows, above which the gauges show PostgreSQL's planner estimate (and
 * `..._exact` says 0); the oldest event is one primary-key lookup. And it answers within ~2 s whatever the
 * database does: each read is bounded (worker/health/bounded-read.ts), and a gauge whose read failed (its table
 * locked, its schema dropped, no answer in time) is left out of that scrape, `posthog_outbox_tables_up 0`
 * saying so, rather than the scrape hanging or failing as a whole.
 */
import type postgres from 'postgres';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { cappedCount, oldestEventAge } from '../../src/ops/status.sql.ts';
import { query } from '../../src/sql/statement.ts';
import { boundedRead, PROBE_BOUNDS } from './bounded-read.ts';
import type { PASS_COUNTERS } from '../settle/ledger.ts';
import type { PassStats } from '../types.ts';

/** The part of the worker's target state the metrics read. */
interface TargetView {
  readonly failingSince: Date | null;
}

export interface WorkerMetrics {
  readonly registry: Registry;
  /** One PostHog request: its duration and outcome (`accepted`, the HTTP status, or `network`). */
  observeRequest(seconds: number, outcome: string): void;
  /** One finished drain pass. */
  observePass(stats: PassStats): void;
  /** One drain pass that failed for a reason other than PostHog (the worker backs off). */
  observeFailedRun(reason: string): void;
}

/** Below this many rows, the backlog and dead-letter gauges are exact counts (of events). */
export const COUNT_CAP = 10_000;

interface Count {
  value: number;
  exact: boolean;
}

/** An exact count up to the cap; above it the planner's estimate (never below the cap). */
async function boundedCount(sql: postgres.Sql, schema: string, table: 'outbox' | 'dead_letters'): Promise<Count> {
  const [row] = await boundedRead(sql, PROBE_BOUNDS, (tx) => query(tx, cappedCount(schema, table), { limit: COUNT_CAP }));
  if (row!.counted < COUNT_CAP) return { value: row!.events, exact: true };
  return { value: Math.max(COUNT_CAP, Math.round(row!.estimate)), exact: false };
}

/** The counters of `PassStats` that are exported, each with its metric's name and help, in registration order. */
const PASS_METRICS: readonly [(typeof PASS_COUNTERS)[number], string, string][] = [
  ['delivered', 'posthog_outbox_delivered_total', 'Events PostHog accepted'],
  ['warned', 'posthog_outbox_warnings_total', 'Events PostHog accepted with a warning (Capture V1 verdict warning): delivered, with a note worth seeing'],
  ['retried', 'posthog_outbox_retried_total', 'Event deliveries that failed in a passing way and were scheduled again'],
  ['deadLettered', 'posthog_outbox_dead_lettered_total', 'Events moved to the dead-letter table'],
  ['released', 'posthog_outbox_released_total', 'Claimed events given back unsent (the pass had failed, or the worker was stopping); no attempt counted'],
  ['identified', 'posthog_outbox_identify_events_total', '$identify / $groupidentify events queued by re-identification'],
  [
    'held',
    'posthog_outbox_held_total',
    'Events PostHog refused on their own with no other event accepted to confirm it was their fault: kept and retried, not dead-lettered',
  ],
  [
    'rejectedBroadly',
    'posthog_outbox_rejected_broadly_total',
    'Batches PostHog refused whole or mostly (a systemic rejection: wrong proxy, API change): nothing dead-lettered, the worker pauses',
  ],
  ['superseded', 'posthog_outbox_superseded_total', 'Identify rows deleted unsent because a newer identify of the same entity was queued since'],
];

/** A gauge whose value is read at each scrape. */
function gauge(registry: Registry, name: string, help: string, read: () => number | Promise<number>): Gauge {
  return new Gauge({
    name,
    help,
    registers: [registry],
    async collect() {
      this.set(await read());
    },
  });
}

/** The pass counters (`PASS_METRICS`, and the passes themselves); returns what counts a finished pass. */
function runCounters(registry: Registry): (stats: PassStats) => void {
  const counters = PASS_METRICS.map(([stat, name, help]) => [stat, new Counter({ name, help, registers: [registry] })] as const);
  const passes = new Counter({ name: 'posthog_outbox_passes_total', help: 'Drain passes', registers: [registry] });
  return (stats) => {
    passes.inc();
    for (const [stat, counter] of counters) counter.inc(stats[stat]);
  };
}

/** Whether the target is failing for this worker, and since when. */
function targetGauges(registry: Registry, target: TargetView): void {
  gauge(
    registry,
    'posthog_outbox_target_failing',
    '1 while every pass of this worker ends on a target failure (outage, wrong host, not PostHog, systemic rejection), else 0',
    () => (target.failingSince === null ? 0 : 1),
  );
  gauge(registry, 'posthog_outbox_target_failing_since_seconds', 'Unix time since when the target has been failing for this worker (0 while it works)', () =>
    target.failingSince === null ? 0 : target.failingSince.getTime() / 1000,
  );
}

/**
 * A gauge read from the database at each scrape. When the read failed it has no sample in that scrape at
 * all: a 0 would read as an empty outbox.
 */
class ReadGauge extends Gauge {
  private readonly read: () => Promise<number | undefined>;

  constructor(registry: Registry, name: string, help: string, read: () => Promise<number | undefined>) {
    super({ name, help, registers: [registry] });
    this.read = read;
  }

  override async get() {
    const value = await this.read();
    if (value !== undefined) this.set(value);
    const metric = await super.get();
    return value === undefined ? { ...metric, values: [] } : metric;
  }
}

/** What a scrape read of the tables; `undefined` where the read failed. */
interface TableSnapshot {
  backlog: Count | undefined;
  oldest: number | undefined;
  dead: Count | undefined;
}

/**
 * Read from the database at scrape time: the same numbers as `posthog-outbox status`, for every worker. One
 * read serves all the gauges of a scrape (and any other scrape within a second); each of its three reads
 * may fail on its own (the dead letters are still counted while the outbox is locked).
 */
function tableGauges(registry: Registry, sql: postgres.Sql, schema: string): void {
  let scrape: Promise<TableSnapshot> | undefined;
  const failed = () => undefined;
  const snapshot = () =>
    (scrape ??= (async () => {
      try {
        const [backlog, oldest, dead] = await Promise.all([
          boundedCount(sql, schema, 'outbox').catch(failed),
          boundedRead(sql, PROBE_BOUNDS, (tx) => query(tx, oldestEventAge(schema))).then(([row]) => (row?.age_ms ?? 0) / 1000, failed),
          boundedCount(sql, schema, 'dead_letters').catch(failed),
        ]);
        return { backlog, oldest, dead };
      } finally {
        setTimeout(() => (scrape = undefined), 1_000).unref();
      }
    })());
  const read = (pick: (s: TableSnapshot) => number | undefined) => async () => pick(await snapshot());
  new ReadGauge(
    registry,
    'posthog_outbox_tables_up',
    `1 when this scrape read the outbox tables, 0 when a read failed (a table locked or missing, no answer within ${PROBE_BOUNDS.totalMs} ms): the gauges it could not read are left out of the scrape`,
    read((s) => (s.backlog && s.oldest !== undefined && s.dead ? 1 : 0)),
  );
  new ReadGauge(
    registry,
    'posthog_outbox_backlog',
    `Events waiting in the outbox: an exact count while the outbox holds fewer than ${COUNT_CAP} rows, above it PostgreSQL's planner estimate of its rows (pg_class.reltuples, as of the table's last vacuum or analyze); posthog_outbox_backlog_exact says which`,
    read((s) => s.backlog?.value),
  );
  new ReadGauge(
    registry,
    'posthog_outbox_backlog_exact',
    `1 when posthog_outbox_backlog is an exact count (at most ${COUNT_CAP}), 0 when it is the planner's estimate`,
    read((s) => (s.backlog === undefined ? undefined : s.backlog.exact ? 1 : 0)),
  );
  new ReadGauge(
    registry,
    'posthog_outbox_oldest_event_age_seconds',
    'Age of the oldest undelivered event, by its UUIDv7 (0 when the outbox is empty)',
    read((s) => s.oldest),
  );
  new ReadGauge(
    registry,
    'posthog_outbox_dead_letters',
    `Events in the dead-letter table: an exact count up to ${COUNT_CAP}, above it the planner's estimate; posthog_outbox_dead_letters_exact says which`,
    read((s) => s.dead?.value),
  );
  new ReadGauge(
    registry,
    'posthog_outbox_dead_letters_exact',
    `1 when posthog_outbox_dead_letters is an exact count (at most ${COUNT_CAP}), 0 when it is the planner's estimate`,
    read((s) => (s.dead === undefined ? undefined : s.dead.exact ? 1 : 0)),
  );
}

export function createMetrics(sql: postgres.Sql, schema: string, target: TargetView): WorkerMetrics {
  const registry = new Registry();
  const observePass = runCounters(registry);
  targetGauges(registry, target);
  const requests = new Histogram({
    name: 'posthog_outbox_batch_request_seconds',
    help: 'Duration of PostHog batch requests, by outcome',
    labelNames: ['outcome'],
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  tableGauges(registry, sql, schema);
  const failedPasses = new Counter({
    name: 'posthog_outbox_failed_passes_total',
    help: 'Drain passes that failed for a reason other than PostHog (PostgreSQL refused to claim or settle, a connection was lost); the worker backs off after each',
    registers: [registry],
  });
  return {
    registry,
    observeRequest(seconds, outcome) {
      requests.observe({ outcome }, seconds);
    },
    observePass,
    observeFailedRun() {
      failedPasses.inc();
    },
  };
}
