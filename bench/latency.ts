/**
 * Commit-to-endpoint latency: handler transactions (a chat-message row and one outbox event each) commit at
 * a steady rate while the project's worker (`posthog-outbox worker`, default settings) delivers them; for
 * every event, the time from its commit returning to the moment the capture endpoint accepted it.
 * The first second is a warm-up and not counted. Then, with nothing left to deliver, what the same worker
 * costs its database while idle: statements a second (pg_stat_statements, BEGIN and COMMIT included).
 */
import postgres from 'postgres';
import { attributedEvent, record } from '../src/index.ts';
import type { BenchDatabase } from './database.ts';
import { startWorkerProcess } from './drain.ts';
import { contextFor } from './events.ts';
import type { CaptureEndpoint } from './lib/capture.ts';
import { now } from './lib/clock.ts';
import { percentile } from './lib/stats.ts';

export interface LatencyResult {
  targetRate: number;
  seconds: number;
  /** Events committed in the measured window, and the rate achieved. */
  committed: number;
  achievedRate: number;
  /** Measured events that had not arrived 30 s after the last commit. */
  missing: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
  /** `$identify` / `$groupidentify` events the worker sent per event, during the run. */
  identifyPerEvent: number;
  /** The idle worker afterwards: statements a second on its database, over `idleSeconds`. */
  idle: IdleCost;
}

export interface IdleCost {
  seconds: number;
  statementsPerSecond: number;
  /** The statements it ran most often, with calls a second (its probe, pg-boss's polling...). */
  top: { query: string; perSecond: number }[];
}

export interface LatencyOptions {
  db: BenchDatabase;
  capture: CaptureEndpoint;
  rate: number;
  seconds: number;
  warmupSeconds?: number;
  /** How long the idle worker is watched once everything arrived. */
  idleSeconds: number;
}

export async function measureLatency(options: LatencyOptions): Promise<LatencyResult> {
  const { db, capture, rate, seconds } = options;
  const warmup = options.warmupSeconds ?? 1;
  await db.sql`TRUNCATE posthog_outbox.outbox`;
  const worker = startWorkerProcess(db, capture, {}, [], 'latency worker');
  const client = postgres(db.url, { max: 8, onnotice: () => {} });
  try {
    await worker.waitForLine(/"worker started"/, 60_000);
    capture.reset();
    const arrivedAt = new Map<string, number>();
    capture.arrivals((items) => {
      for (const [uuid, at] of items) if (!arrivedAt.has(uuid)) arrivedAt.set(uuid, at);
    });
    const { committedAt, failures } = await commitSteadily(client, rate, warmup + seconds, warmup);
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && [...committedAt.keys()].some((uuid) => !arrivedAt.has(uuid))) await new Promise((r) => setTimeout(r, 50));
    capture.arrivals(undefined);
    const counts = await capture.counts();
    return {
      targetRate: rate,
      seconds,
      ...latencies(committedAt, arrivedAt, failures, seconds),
      identifyPerEvent: counts.bench > 0 ? (counts.accepted - counts.bench) / counts.bench : 0,
      idle: await idleCost(db, options.idleSeconds),
    };
  } finally {
    capture.arrivals(undefined);
    await client.end({ timeout: 5 });
    await worker.stop('SIGTERM', 20_000);
  }
}

/** Statements executed so far on the server, by query text, but the bench's own reads of these counters. */
async function statementCalls(db: BenchDatabase): Promise<Map<string, number>> {
  const rows = await db.sql<{ query: string; calls: string }[]>`
    SELECT query, sum(calls)::text AS calls FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%' GROUP BY query`;
  return new Map(rows.map((r) => [r.query, Number(r.calls)]));
}

/**
 * What the worker costs its database while idle: statements counted over `seconds`, after a pause for its
 * probe to slow down to its idle pace. The worker is the only client then (the bench's pool is idle).
 */
async function idleCost(db: BenchDatabase, seconds: number): Promise<IdleCost> {
  await new Promise((r) => setTimeout(r, 3_000));
  const before = await statementCalls(db);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const after = await statementCalls(db);
  const deltas = [...after].map(([query, calls]) => ({
    query: query.replace(/\s+/g, ' ').slice(0, 100),
    perSecond: (calls - (before.get(query) ?? 0)) / seconds,
  }));
  const ran = deltas.filter((d) => d.perSecond > 0).sort((a, b) => b.perSecond - a.perSecond);
  return {
    seconds,
    statementsPerSecond: ran.reduce((sum, d) => sum + d.perSecond, 0),
    top: ran.slice(0, 5).map((d) => ({ query: d.query, perSecond: Math.round(d.perSecond * 100) / 100 })),
  };
}

const CONTENT = 'Could you summarise the last three support tickets from this customer and draft a reply?';

/**
 * Handler transactions at `rate` per second for `total` seconds, all awaited: when each event after the
 * warm-up committed, by uuid, and how many transactions failed.
 */
async function commitSteadily(
  client: postgres.Sql,
  rate: number,
  total: number,
  warmup: number,
): Promise<{ committedAt: Map<string, number>; failures: number }> {
  const committedAt = new Map<string, number>();
  let failures = 0;
  const inFlight = new Set<Promise<void>>();
  const commit = (i: number, measured: boolean) => {
    const context = contextFor(i);
    const event = attributedEvent(context, 'chat_message_sent', { message_id: `msg_${i}`, characters: CONTENT.length });
    const done = client
      .begin(async (tx) => {
        await tx`INSERT INTO bench.chat_messages (thread_id, user_id, role, content) VALUES (${context.threadId!}, ${context.user.id}, 'user', ${CONTENT})`;
        return record(tx, event);
      })
      .then(
        ([uuid]) => {
          if (measured) committedAt.set(uuid!, now());
        },
        () => void failures++,
      )
      .finally(() => inFlight.delete(done));
    inFlight.add(done);
  };
  let issued = 0;
  const started = now();
  // A steady schedule: every 2 ms, commit whatever the rate says is due by now.
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const elapsed = (now() - started) / 1000;
      const due = Math.floor(Math.min(elapsed, total) * rate);
      while (issued < due) {
        commit(issued, issued / rate >= warmup);
        issued++;
      }
      if (elapsed >= total) {
        clearInterval(tick);
        resolve();
      }
    }, 2);
  });
  await Promise.all(inFlight);
  return { committedAt, failures };
}

/** Commit-to-arrival percentiles of the measured events; a failed transaction counts as missing. */
function latencies(
  committedAt: ReadonlyMap<string, number>,
  arrivedAt: ReadonlyMap<string, number>,
  failures: number,
  seconds: number,
): Pick<LatencyResult, 'committed' | 'achievedRate' | 'missing' | 'p50Ms' | 'p95Ms' | 'p99Ms' | 'maxMs'> {
  const sorted: number[] = [];
  let missing = 0;
  for (const [uuid, at] of committedAt) {
    const arrived = arrivedAt.get(uuid);
    if (arrived === undefined) missing++;
    else sorted.push(arrived - at);
  }
  sorted.sort((a, b) => a - b);
  return {
    committed: committedAt.size,
    achievedRate: committedAt.size / seconds,
    missing: missing + failures,
    p50Ms: percentile(sorted, 0.5),
    p95Ms: percentile(sorted, 0.95),
    p99Ms: percentile(sorted, 0.99),
    maxMs: sorted.at(-1) ?? Number.NaN,
  };
}
