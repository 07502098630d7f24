/**
 * The bench's results: the figures of every phase, the issue-5 targets evaluated as ratios within the run,
 * the table printed on stdout, and the JSON file written to bench/results/.
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { cpus, release, totalmem, type } from 'node:os';
import path from 'node:path';
import type { WorkerDrain } from './drain.ts';
import type { DesignRun } from './designs/protocol.ts';
import type { LatencyResult } from './latency.ts';
import type { WriteCostRow } from './write-cost.ts';
import { round } from './lib/stats.ts';

export interface Machine {
  cores: number;
  cpuModel: string;
  memoryGb: number;
  os: string;
  node: string;
  postgres: string;
  packages: Record<string, string>;
  postgresSettings: Record<string, string>;
}

export function machineInfo(postgres: string, packages: Record<string, string>, postgresSettings: Record<string, string>): Machine {
  const list = cpus();
  return {
    cores: list.length,
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    memoryGb: Math.round(totalmem() / 1024 ** 3),
    os: `${type()} ${release()}`,
    node: process.version,
    postgres,
    packages,
    postgresSettings,
  };
}

export interface Results {
  mode: 'quick' | 'full';
  startedAt: string;
  durationSeconds?: number;
  machine?: Machine;
  config: Record<string, unknown>;
  /** PostgreSQL ran with fsync, synchronous_commit and full_page_writes on (the default; `--throwaway`: off). */
  durable?: boolean;
  writeCost?: WriteCostRow[];
  /**
   * The handler's cost as ratios to the transaction without analytics, for scripts: per variant, the median
   * latency ratio at 1 connection and the commits/s ratio at 16 connections.
   */
  writeCostRatios?: { durable: boolean; variants: Record<string, { medianAt1: number | null; commitsAt16: number | null }> };
  /** Share of the cores busy with other processes during the write-cost phase (noise). */
  writeCostOtherLoad?: number;
  drain?: {
    events: number;
    bare: DesignRun[];
    reference: DesignRun[];
    rawDelete: DesignRun[];
    jobPerEvent: DesignRun[];
    worker: WorkerDrain[];
  };
  latency?: LatencyResult;
  scaling?: WorkerDrain[];
  targets?: Target[];
  /** Phases that failed, with the error (the bench reports them and goes on). */
  errors: { phase: string; error: string }[];
}

export interface Target {
  target: string;
  measured: string;
  /** measured / limit, oriented so that >= 1 means met. */
  score: number | null;
  met: boolean | null;
}

// --- helpers -------------------------------------------------------------------------------------------

const fmt = (n: number | undefined, digits = 0) =>
  n === undefined || !Number.isFinite(n) ? 'n/a' : n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const ratio = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? 'n/a' : `${n.toFixed(2)}x`);
const mb = (bytes: number | undefined) => (bytes === undefined ? 'n/a' : `${Math.round(bytes / 1024 / 1024)} MB`);

/** The fastest run of a list (best of N: noise only ever slows a run down). */
export function best<T extends { eventsPerSecond: number }>(runs: readonly T[] | undefined): T | undefined {
  if (!runs || runs.length === 0) return undefined;
  return runs.reduce((a, b) => (b.eventsPerSecond > a.eventsPerSecond ? b : a));
}

function table(headers: string[], rows: string[][], align: ('l' | 'r')[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (align[i] === 'r' ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function perEvent(run: { cpu: Record<string, number>; events: number }, key: string): string {
  const seconds = run.cpu[key];
  return seconds === undefined ? 'n/a' : fmt((seconds * 1e6) / run.events);
}

function designLabel(run: DesignRun): string {
  const params = Object.entries(run.params)
    .filter(([key]) => key !== 'events')
    .map(([key, value]) => `${key} ${value}`)
    .join(', ');
  return params ? `${run.design} (${params})` : run.design;
}

// --- targets ---------------------------------------------------------------------------------------------

function atLeast(target: string, measured: number | undefined, limit: number, show: (n: number) => string): Target {
  if (measured === undefined || !Number.isFinite(measured)) return { target, measured: 'not measured', score: null, met: null };
  return { target, measured: show(measured), score: round(measured / limit, 3), met: measured >= limit };
}

function atMost(target: string, measured: number | undefined, limit: number, show: (n: number) => string): Target {
  if (measured === undefined || !Number.isFinite(measured)) return { target, measured: 'not measured', score: null, met: null };
  return { target, measured: show(measured), score: round(limit / measured, 3), met: measured <= limit };
}

export function evaluateTargets(results: Results): Target[] {
  const targets: Target[] = [];
  const drain = results.drain;
  const worker = best(drain?.worker);
  const bare = best(drain?.bare);
  const reference = best(drain?.reference);
  const jobs = best(drain?.jobPerEvent);
  const defaults = best(drain?.worker.filter((w) => w.settings.isDefault));
  const x = (n: number) => `${n.toFixed(2)}x`;
  targets.push(
    atLeast('drain (best worker settings) >= 1.4x bare posthog-node ceiling', worker && bare && worker.eventsPerSecond / bare.eventsPerSecond, 1.4, x),
  );
  targets.push(atLeast('drain (best worker settings) >= reference outbox', worker && reference && worker.eventsPerSecond / reference.eventsPerSecond, 1, x));
  targets.push(atLeast('drain (worker defaults) >= reference outbox', defaults && reference && defaults.eventsPerSecond / reference.eventsPerSecond, 1, x));
  targets.push(
    atLeast('drain (best worker settings) >= 5x job-per-event at its best batch size', worker && jobs && worker.eventsPerSecond / jobs.eventsPerSecond, 5, x),
  );
  const ratios = results.writeCostRatios?.variants;
  if (ratios) {
    const durable = results.writeCostRatios!.durable ? 'durable' : 'throwaway settings';
    const r = (variant: string) => ratios[variant] ?? { medianAt1: null, commitsAt16: null };
    targets.push(
      atMost(
        `handler tx + 1 event, pipelined: median <= 1.25x without (1 connection, ${durable})`,
        r('1 outbox event, pipelined').medianAt1 ?? undefined,
        1.25,
        x,
      ),
    );
    targets.push(
      atLeast(`handler tx + 1 event: commits/s >= 0.75x without (16 connections, ${durable})`, r('1 outbox event').commitsAt16 ?? undefined, 0.75, x),
    );
    targets.push(atMost(`handler tx + 5 events: median <= 1.5x without (1 connection, ${durable})`, r('5 outbox events').medianAt1 ?? undefined, 1.5, x));
    targets.push(
      atLeast(`handler tx + 5 events: commits/s >= 0.6x without (16 connections, ${durable})`, r('5 outbox events').commitsAt16 ?? undefined, 0.6, x),
    );
  }
  const latency = results.latency;
  targets.push(atMost(`commit-to-endpoint p99 <= 100 ms at ${latency?.targetRate ?? 1000} events/s`, latency?.p99Ms, 100, (n) => `${fmt(n)} ms`));
  const allScaling = results.scaling ?? [];
  const scaling = allScaling.filter((s) => !s.settings.nodeHeap);
  const nodeHeap = allScaling.find((s) => s.settings.nodeHeap);
  const largest = scaling.reduce<WorkerDrain | undefined>((a, b) => (!a || b.events > a.events ? b : a), undefined);
  const smallest = best(scaling.filter((s) => s.events === Math.min(...scaling.map((t) => t.events))));
  const largestBest = best(scaling.filter((s) => s.events === largest?.events));
  const sizeLabel = largest ? (largest.events >= 1_000_000 ? `${largest.events / 1_000_000}M` : `${largest.events / 1000}k`) : '1M';
  targets.push(
    atMost(
      `worker command peak RSS <= 200 MB on a ${sizeLabel} backlog (defaults: its sidecar heap)`,
      largestBest?.peakRssBytes && largestBest.peakRssBytes / 1024 / 1024,
      200,
      (n) => `${Math.round(n)} MB`,
    ),
  );
  targets.push(
    atLeast(
      `  at >= 0.9x the events/s of Node's own heap (${nodeHeap?.peakRssBytes ? `${Math.round(nodeHeap.peakRssBytes / 1024 / 1024)} MB peak` : 'not measured'})`,
      nodeHeap && largestBest ? largestBest.eventsPerSecond / nodeHeap.eventsPerSecond : undefined,
      0.9,
      x,
    ),
  );
  targets.push(
    atLeast(
      `throughput at ${sizeLabel} within 20% of throughput at ${smallest ? `${smallest.events / 1000}k` : '10k'}`,
      largestBest && smallest && largestBest !== smallest ? largestBest.eventsPerSecond / smallest.eventsPerSecond : undefined,
      0.8,
      x,
    ),
  );
  return targets;
}

// --- the table ---------------------------------------------------------------------------------------------

export function renderTable(results: Results): string {
  const out: string[] = [];
  const m = results.machine;
  out.push(
    `posthog-outbox benchmark (${results.mode}${results.mode === 'quick' ? ': small backlogs, short runs' : ''}), ${results.startedAt}` +
      (m
        ? `\n${m.cores} cores (${m.cpuModel}), ${m.memoryGb} GB, ${m.os}; Node ${m.node}; PostgreSQL ${m.postgres} (embedded, fsync ${m.postgresSettings.fsync}, synchronous_commit ${m.postgresSettings.synchronous_commit}); posthog-node ${m.packages['posthog-node']}, pg-boss ${m.packages['pg-boss']}`
        : ''),
  );

  if (results.writeCost) {
    const none = new Map(results.writeCost.filter((r) => r.variant === 'no analytics').map((r) => [r.connections, r]));
    const other = results.writeCostOtherLoad;
    out.push(
      '',
      `Write cost: handler transaction (drizzle over postgres.js: insert a ~1 KB chat-message row into an indexed table) with and without analytics, PostgreSQL ${results.durable === false ? 'with throwaway settings (fsync off)' : 'durable (fsync, synchronous_commit on)'}; variants take turns${other === undefined ? '' : `; other load ${Math.round(other * 100)}%`}`,
    );
    out.push(
      table(
        ['variant', 'connections', 'median ms', 'p99 ms', 'tx/s', 'median vs none', 'tx/s vs none'],
        results.writeCost.map((r) => [
          r.variant,
          String(r.connections),
          fmt(r.medianMs, 2),
          fmt(r.p99Ms, 2),
          fmt(r.txPerSecond),
          ratio(r.medianMs / (none.get(r.connections)?.medianMs ?? Number.NaN)),
          ratio(r.txPerSecond / (none.get(r.connections)?.txPerSecond ?? Number.NaN)),
        ]),
        ['l', 'r', 'r', 'r', 'r', 'r', 'r'],
      ),
    );
  }

  const drain = results.drain;
  if (drain) {
    const bare = best(drain.bare);
    const reference = best(drain.reference);
    out.push('', `Drain throughput: ${fmt(drain.events)}-event backlog to the capture endpoint (best of ${Math.max(drain.bare.length, 1)} where repeated)`);
    type Line = { label: string; eventsPerSecond: number; cpu: Record<string, number>; events: number; peakRssBytes: number | undefined; http: boolean };
    const cores = results.machine?.cores ?? 1;
    const share = (l: Line, cpuSeconds: number | undefined) => {
      const seconds = l.events / l.eventsPerSecond;
      return cpuSeconds === undefined ? 'n/a' : `${Math.max(0, Math.round((100 * cpuSeconds) / (seconds * cores)))}%`;
    };
    /** CPU the machine spent on anything but this drain: other processes (a test run next door), the kernel. */
    const others = (cpu: Record<string, number>) =>
      cpu.machine === undefined ? undefined : cpu.machine - (cpu.design ?? 0) - (cpu.postgres ?? 0) - (cpu.capture ?? 0) - (cpu.bench ?? 0);
    const lines: Line[] = [];
    const add = (label: string, run: DesignRun | WorkerDrain | undefined, http = true) => {
      if (run) lines.push({ label, eventsPerSecond: run.eventsPerSecond, cpu: run.cpu, events: run.events, peakRssBytes: run.peakRssBytes, http });
    };
    const bestWorker = best(drain.worker);
    for (const w of [...drain.worker].sort((a, b) => b.eventsPerSecond - a.eventsPerSecond)) {
      const same = drain.worker.filter((o) => o.settings.label === w.settings.label);
      if (best(same) !== w) continue;
      add(`project worker: ${w.settings.label}${w === bestWorker ? ' [best]' : ''}`, w);
    }
    add('bare posthog-node (no database): ceiling', bare);
    add('reference outbox (60 lines)', reference);
    const bestJobs = best(drain.jobPerEvent);
    for (const run of [...drain.jobPerEvent].sort((a, b) => b.eventsPerSecond - a.eventsPerSecond))
      add(`${designLabel(run)}${run === bestJobs ? ' [best]' : ''}`, run);
    add('raw DELETE ... SKIP LOCKED RETURNING (no HTTP)', best(drain.rawDelete), false);
    out.push(
      table(
        ['design', 'events/s', 'vs bare', 'vs reference', 'CPU us/event: drain', 'postgres', 'endpoint', 'machine busy', 'other load', 'peak RSS'],
        lines.map((l) => [
          l.label,
          fmt(l.eventsPerSecond),
          ratio(bare && l.eventsPerSecond / bare.eventsPerSecond),
          ratio(reference && l.eventsPerSecond / reference.eventsPerSecond),
          perEvent(l, 'design'),
          perEvent(l, 'postgres'),
          l.http ? perEvent(l, 'capture') : '-',
          share(l, l.cpu.machine),
          share(l, others(l.cpu)),
          mb(l.peakRssBytes),
        ]),
        ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      ),
    );
    const noisy = lines.map((l) => others(l.cpu) ?? 0).map((o, i) => (100 * o) / ((lines[i]!.events / lines[i]!.eventsPerSecond) * cores));
    const worst = Math.max(0, ...noisy);
    if (worst >= 10) {
      out.push(
        `NOISY: other processes or the kernel kept up to ${Math.round(worst)}% of the machine busy during a drain (column "other load"); ratios between those rows are unreliable, run again on a quiet machine.`,
      );
    }
    const identify = drain.worker.map((w) => w.identifyEvents / w.events).filter(Number.isFinite);
    if (identify.length > 0)
      out.push(
        `(project worker: also delivered ${(Math.max(...identify) * 100).toFixed(1)}% extra $identify/$groupidentify events at most; CPU columns are core-microseconds per backlog event; machine busy: share of all ${cores} cores in use during the drain; other load: the part of it spent outside the drain, the bench and the endpoint, i.e. noise from other processes and the kernel)`,
      );
  }

  const latency = results.latency;
  if (latency) {
    out.push(
      '',
      `Commit-to-endpoint latency: ${fmt(latency.targetRate)} events/s for ${latency.seconds} s (1 event per handler transaction), project worker with defaults`,
    );
    out.push(
      table(
        ['committed', 'events/s', 'p50 ms', 'p95 ms', 'p99 ms', 'max ms', 'missing', '$identify per event'],
        [
          [
            fmt(latency.committed),
            fmt(latency.achievedRate),
            fmt(latency.p50Ms, 1),
            fmt(latency.p95Ms, 1),
            fmt(latency.p99Ms, 1),
            fmt(latency.maxMs, 1),
            fmt(latency.missing),
            fmt(latency.identifyPerEvent, 2),
          ],
        ],
        ['r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      ),
    );
  }

  const scaling = results.scaling?.filter((s) => !s.settings.nodeHeap);
  const nodeHeapRun = results.scaling?.find((s) => s.settings.nodeHeap);
  if (scaling && scaling.length > 0) {
    const sizes = [...new Set(scaling.map((s) => s.events))].sort((a, b) => a - b);
    const base = best(scaling.filter((s) => s.events === sizes[0]));
    out.push('', 'Scaling: the project worker (defaults) on growing backlogs (best of the runs at each size; RSS when started: before draining anything)');
    out.push(
      table(
        ['backlog', 'runs', 'events/s', `vs ${fmt(sizes[0])}`, 'drain s', 'settled s', 'RSS when started', 'peak RSS'],
        sizes.map((size) => {
          const runs = scaling.filter((s) => s.events === size);
          const b = best(runs)!;
          return [
            fmt(size),
            String(runs.length),
            fmt(b.eventsPerSecond),
            ratio(base && b.eventsPerSecond / base.eventsPerSecond),
            fmt(b.seconds, 1),
            fmt(b.settledSeconds, 1),
            mb(Math.max(...runs.map((r) => r.startRssBytes ?? 0))),
            mb(Math.max(...runs.map((r) => r.peakRssBytes ?? 0))),
          ];
        }),
        ['r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      ),
    );
    if (nodeHeapRun) {
      const same = best(scaling.filter((s) => s.events === nodeHeapRun.events));
      out.push(
        `with Node's own heap sizing (POSTHOG_OUTBOX_HEAP=node), ${fmt(nodeHeapRun.events)}: ${fmt(nodeHeapRun.eventsPerSecond)} events/s, peak RSS ${mb(nodeHeapRun.peakRssBytes ?? 0)}; ` +
          `the sidecar heap (defaults) ran at ${ratio(same && same.eventsPerSecond / nodeHeapRun.eventsPerSecond)} of that`,
      );
    }
  }

  if (results.targets) {
    out.push('', 'Issue 5 targets (ratios within this run; a timing miss is reported, never fails the run)');
    out.push(
      table(
        ['', 'target', 'measured', 'margin'],
        results.targets.map((t) => [
          t.met === null ? '?' : t.met ? 'met' : 'MISSED',
          t.target,
          t.measured,
          t.score === null ? '' : t.met ? `${((t.score - 1) * 100).toFixed(0)}% to spare` : `${((1 - t.score) * 100).toFixed(0)}% short`,
        ]),
        ['l', 'l', 'l', 'l'],
      ),
    );
  }
  for (const e of results.errors) out.push('', `FAILED: ${e.phase}: ${e.error}`);
  return out.join('\n');
}

// --- the JSON file -------------------------------------------------------------------------------------------

/** Writes the results to bench/results/<timestamp>.json (through a .tmp file) and returns the path. */
export async function writeResults(dir: string, results: Results): Promise<string> {
  await mkdir(dir, { recursive: true });
  const name = `${results.startedAt.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')}.json`;
  const file = path.join(dir, name);
  await writeFile(`${file}.tmp`, `${JSON.stringify(results, (_key, value: unknown) => (typeof value === 'number' ? round(value, 5) : value), 2)}\n`);
  await rename(`${file}.tmp`, file);
  return file;
}

/** Ratios of each write-cost variant to the transaction without analytics (median at 1 connection, commits/s at 16). */
export function writeCostRatios(rows: readonly WriteCostRow[], durable: boolean): NonNullable<Results['writeCostRatios']> {
  const find = (variant: string, connections: number) => rows.find((r) => r.variant === variant && r.connections === connections);
  const variants: NonNullable<Results['writeCostRatios']>['variants'] = {};
  for (const variant of new Set(rows.map((r) => r.variant))) {
    const at1 = find(variant, 1);
    const none1 = find('no analytics', 1);
    const at16 = find(variant, 16);
    const none16 = find('no analytics', 16);
    variants[variant] = {
      medianAt1: at1 && none1 ? Math.round((at1.medianMs / none1.medianMs) * 1000) / 1000 : null,
      commitsAt16: at16 && none16 ? Math.round((at16.txPerSecond / none16.txPerSecond) * 1000) / 1000 : null,
    };
  }
  return { durable, variants };
}
