/**
 * The project's worker draining a pre-filled backlog: `posthog-outbox worker` as installed (the built
 * `dist/cli/main.js`, what the package's `bin` runs; `npm run bench` builds it first) as real child processes, one
 * or several, with the given batch size and concurrency. Run from its TypeScript source the command would
 * also carry Node's type stripper: 124 MB of RSS when idle, against 97 MB for users' command.
 *
 * Timing starts when the backlog becomes claimable, not when the process starts: the bench holds an
 * ACCESS EXCLUSIVE lock on the outbox while the workers boot (their claims wait on it), and releases it once
 * every worker has logged `worker started`. It ends when the endpoint has accepted every backlog event
 * (`$identify` / `$groupidentify`, which the worker adds, are counted apart); `settledSeconds` is when the
 * outbox was empty again, identify events delivered too. Peak RSS is each worker's VmHWM, read before it is
 * stopped.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fillOutbox, outboxCount } from './backlog.ts';
import type { BenchDatabase } from './database.ts';
import { API_KEY } from './designs/protocol.ts';
import type { CaptureEndpoint } from './lib/capture.ts';
import { treeCurrentRss, treePeakRss, ROOT, spawnNode, type Child } from './lib/children.ts';
import { now } from './lib/clock.ts';
import { CpuMeter, machineCpu, postgresCpu, treeCpu, processCpu, type CpuSample } from './lib/cpu.ts';

const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');

/** The built command; checked when the bench starts (bench/run.ts), before any phase fills a backlog for it. */
export function builtCli(): string {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build the package first (npm run build; npm run bench does)`);
  return CLI;
}

export interface WorkerSettings {
  /** Worker processes. Default 1. */
  processes?: number;
  /** --batch-size; the worker's default when unset. */
  batchSize?: number;
  /** --concurrency; the worker's default when unset. */
  concurrency?: number;
  /**
   * Node's own heap sizing (`POSTHOG_OUTBOX_HEAP=node`) instead of the command's sidecar heap (cli/heap.ts):
   * what the sidecar heap saves in RSS and costs in events/s.
   */
  nodeHeap?: boolean;
}

export interface WorkerDrain {
  settings: Required<WorkerSettings> & { label: string; isDefault: boolean };
  events: number;
  seconds: number;
  eventsPerSecond: number;
  /** Until the outbox was empty (identify events delivered too). */
  settledSeconds: number;
  /** `$identify` / `$groupidentify` events delivered along the way. */
  identifyEvents: number;
  /** Drain passes and PostHog requests, summed over the workers (from their `worker stopped` log line). */
  passes: number;
  requests: number;
  /** Highest VmHWM among the worker commands (their process trees), bytes: the command re-executes itself under its sidecar heap (cli/heap.ts), one process. */
  peakRssBytes: number | undefined;
  /** Highest VmRSS among the worker processes once started, before draining anything, bytes. */
  startRssBytes: number | undefined;
  /** CPU seconds until the backlog was delivered: the worker processes, PostgreSQL, the capture endpoint, the whole machine (busy, and stolen by the hypervisor). */
  cpu: CpuSample;
}

export interface DrainOptions {
  db: BenchDatabase;
  capture: CaptureEndpoint;
  events: number;
  settings?: WorkerSettings;
  /** Extra node flags for the workers (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
  timeoutMs: number;
}

const DEFAULT_BATCH_SIZE = 1000;
const DEFAULT_CONCURRENCY = 2;

export function describeSettings(settings: WorkerSettings = {}): Required<WorkerSettings> & { label: string; isDefault: boolean } {
  const processes = settings.processes ?? 1;
  const batchSize = settings.batchSize ?? DEFAULT_BATCH_SIZE;
  const concurrency = settings.concurrency ?? DEFAULT_CONCURRENCY;
  const nodeHeap = settings.nodeHeap ?? false;
  const defaults = settings.batchSize === undefined && settings.concurrency === undefined;
  const label = `${processes > 1 ? `${processes} processes x ` : ''}batch ${batchSize}, concurrency ${concurrency}${defaults ? ' (defaults)' : ''}${nodeHeap ? ", Node's own heap" : ''}`;
  return { processes, batchSize, concurrency, nodeHeap, label, isDefault: defaults && processes === 1 && !nodeHeap };
}

export function startWorkerProcess(db: BenchDatabase, capture: CaptureEndpoint, settings: WorkerSettings, nodeArgs: string[] = [], name = 'worker'): Child {
  const flags: string[] = [];
  if (settings.batchSize !== undefined) flags.push('--batch-size', String(settings.batchSize));
  if (settings.concurrency !== undefined) flags.push('--concurrency', String(settings.concurrency));
  // Only the settings given here: none of the caller's POSTHOG_OUTBOX_* variables leak into the worker.
  const inherited = Object.fromEntries(
    Object.keys(process.env)
      .filter((key) => key.startsWith('POSTHOG_OUTBOX_'))
      .map((key) => [key, undefined]),
  );
  return spawnNode(name, builtCli(), ['worker', ...flags], {
    nodeArgs,
    env: {
      ...inherited,
      DATABASE_URL: db.url,
      POSTHOG_API_KEY: API_KEY,
      POSTHOG_HOST: capture.url,
      NODE_OPTIONS: undefined,
      POSTHOG_OUTBOX_HEAP: settings.nodeHeap ? 'node' : undefined,
    },
  });
}

/** Totals from a worker's `worker stopped` log line (pino JSON). */
function stoppedTotals(output: string): { passes: number; requests: number } {
  for (const line of output.split('\n').reverse()) {
    if (!line.includes('"worker stopped"')) continue;
    try {
      const parsed = JSON.parse(line) as { passes?: number; requests?: number };
      return { passes: parsed.passes ?? 0, requests: parsed.requests ?? 0 };
    } catch {
      break;
    }
  }
  return { passes: Number.NaN, requests: Number.NaN };
}

export async function drainWithWorker(options: DrainOptions): Promise<WorkerDrain> {
  const { db, capture, events } = options;
  const settings = describeSettings(options.settings);
  await fillOutbox(db.sql, events);
  capture.reset();
  const lock = await db.sql.reserve();
  const workers: Child[] = [];
  try {
    await lock`BEGIN`;
    await lock`LOCK TABLE posthog_outbox.outbox IN ACCESS EXCLUSIVE MODE`;
    for (let i = 0; i < settings.processes; i++) {
      workers.push(startWorkerProcess(db, capture, options.settings ?? {}, options.nodeArgs, `worker ${i + 1}`));
    }
    await Promise.all(workers.map((w) => w.waitForLine(/"worker started"/, 60_000)));
    const startRss = await Promise.all(workers.map((w) => treeCurrentRss(w.pid)));
    const meter = new CpuMeter({
      design: async () => (await Promise.all(workers.map((w) => treeCpu(w.pid)))).reduce((a, b) => a + b, 0),
      postgres: () => postgresCpu(db.server.pid),
      capture: () => processCpu(capture.child.pid),
      bench: () => processCpu(process.pid),
      machine: () => machineCpu(),
      steal: () => machineCpu({ steal: true }),
    });
    const cpuBefore = await meter.sample();
    const started = now();
    await lock`COMMIT`;
    const failed = Promise.race(
      workers.map((w) =>
        w.exited.then((code) => Promise.reject(new Error(`${w.name} exited (${String(code)}) during the drain:\n${w.output().slice(-3_000)}`))),
      ),
    );
    failed.catch(() => undefined);
    const reached = await Promise.race([capture.waitFor(events, options.timeoutMs), failed]);
    const cpu = await meter.since(cpuBefore);
    const peaks = await Promise.all(workers.map((w) => treePeakRss(w.pid)));
    // Settled: the identify events the last runs queued are delivered too (the outbox stays empty and
    // nothing more arrives for half a second).
    let counts = await capture.counts();
    const deadline = Date.now() + 60_000;
    for (let quiet = 0; quiet < 5 && Date.now() < deadline; ) {
      await new Promise((r) => setTimeout(r, 100));
      const next = await capture.counts();
      quiet = next.accepted === counts.accepted && (await outboxCount(db.sql)) === 0 ? quiet + 1 : 0;
      counts = next;
    }
    await Promise.all(workers.map((w) => w.stop('SIGTERM', 30_000)));
    const totals = workers.map((w) => stoppedTotals(w.output()));
    const seconds = (reached.at - started) / 1000;
    const known = peaks.filter((p): p is number => p !== undefined);
    return {
      settings,
      events,
      seconds,
      eventsPerSecond: events / seconds,
      settledSeconds: ((counts.last ?? reached.at) - started) / 1000,
      identifyEvents: counts.accepted - counts.bench,
      passes: totals.reduce((sum, t) => sum + t.passes, 0),
      requests: totals.reduce((sum, t) => sum + t.requests, 0),
      peakRssBytes: known.length > 0 ? Math.max(...known) : undefined,
      startRssBytes: startRss.some((r) => r !== undefined) ? Math.max(...startRss.map((r) => r ?? 0)) : undefined,
      cpu,
    };
  } finally {
    await Promise.all(workers.map((w) => w.stop('SIGTERM', 10_000)));
    await lock`ROLLBACK`.catch(() => undefined);
    lock.release();
  }
}
