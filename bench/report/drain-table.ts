/**
 * The drain section of the report: every design's events/s on the same backlog, against the bare
 * posthog-node ceiling and the reference outbox, with the CPU each part of the machine spent per event.
 */
import type { DesignRun } from '../designs/protocol.ts';
import type { WorkerDrain } from '../drain.ts';
import { best, type Column, fmt, mb, ratio, table } from './format.ts';
import type { DrainResults, Results } from './results.ts';

/** One row: a run of a design or of the project worker. */
interface Line {
  label: string;
  eventsPerSecond: number;
  cpu: Record<string, number>;
  events: number;
  peakRssBytes: number | undefined;
  /** Delivers over HTTP (the endpoint's CPU counts). */
  http: boolean;
}

export function drainSection(results: Results): string[] {
  const drain = results.drain;
  if (!drain) return [];
  const cores = results.machine?.cores ?? 1;
  const lines = drainLines(drain);
  return [
    '',
    `Drain throughput: ${fmt(drain.events)}-event backlog to the capture endpoint (best of ${Math.max(drain.bare.length, 1)} where repeated)`,
    table(drainColumns(best(drain.bare), best(drain.reference), cores), lines),
    ...drainNotes(drain, lines, cores),
  ];
}

/** The project worker's settings (the best run of each, fastest first), the two references, job-per-event, raw DELETE. */
function drainLines(drain: DrainResults): Line[] {
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
  add('bare posthog-node (no database): ceiling', best(drain.bare));
  add('reference outbox (60 lines)', best(drain.reference));
  const bestJobs = best(drain.jobPerEvent);
  for (const run of [...drain.jobPerEvent].sort((a, b) => b.eventsPerSecond - a.eventsPerSecond))
    add(`${designLabel(run)}${run === bestJobs ? ' [best]' : ''}`, run);
  add('raw DELETE ... SKIP LOCKED RETURNING (no HTTP)', best(drain.rawDelete), false);
  return lines;
}

function drainColumns(bare: DesignRun | undefined, reference: DesignRun | undefined, cores: number): Column<Line>[] {
  const share = (l: Line, cpuSeconds: number | undefined) => {
    const seconds = l.events / l.eventsPerSecond;
    return cpuSeconds === undefined ? 'n/a' : `${Math.max(0, Math.round((100 * cpuSeconds) / (seconds * cores)))}%`;
  };
  return [
    { header: 'design', align: 'l', cell: (l) => l.label },
    { header: 'events/s', align: 'r', cell: (l) => fmt(l.eventsPerSecond) },
    { header: 'vs bare', align: 'r', cell: (l) => ratio(bare && l.eventsPerSecond / bare.eventsPerSecond) },
    { header: 'vs reference', align: 'r', cell: (l) => ratio(reference && l.eventsPerSecond / reference.eventsPerSecond) },
    { header: 'CPU us/event: drain', align: 'r', cell: (l) => perEvent(l, 'design') },
    { header: 'postgres', align: 'r', cell: (l) => perEvent(l, 'postgres') },
    { header: 'endpoint', align: 'r', cell: (l) => (l.http ? perEvent(l, 'capture') : '-') },
    { header: 'machine busy', align: 'r', cell: (l) => share(l, l.cpu.machine) },
    { header: 'other load', align: 'r', cell: (l) => share(l, others(l.cpu)) },
    { header: 'peak RSS', align: 'r', cell: (l) => mb(l.peakRssBytes) },
  ];
}

/** A warning when other processes kept the machine busy, and what the columns mean. */
function drainNotes(drain: DrainResults, lines: readonly Line[], cores: number): string[] {
  const notes: string[] = [];
  const noisy = lines.map((l) => others(l.cpu) ?? 0).map((o, i) => (100 * o) / ((lines[i]!.events / lines[i]!.eventsPerSecond) * cores));
  const worst = Math.max(0, ...noisy);
  if (worst >= 10) {
    notes.push(
      `NOISY: other processes or the kernel kept up to ${Math.round(worst)}% of the machine busy during a drain (column "other load"); ratios between those rows are unreliable, run again on a quiet machine.`,
    );
  }
  const identify = drain.worker.map((w) => w.identifyEvents / w.events).filter(Number.isFinite);
  if (identify.length > 0)
    notes.push(
      `(project worker: also delivered ${(Math.max(...identify) * 100).toFixed(1)}% extra $identify/$groupidentify events at most; CPU columns are core-microseconds per backlog event; machine busy: share of all ${cores} cores in use during the drain; other load: the part of it spent outside the drain, the bench and the endpoint, i.e. noise from other processes and the kernel)`,
    );
  return notes;
}

/** CPU the machine spent on anything but this drain: other processes (a test run next door), the kernel. */
function others(cpu: Record<string, number>): number | undefined {
  return cpu.machine === undefined ? undefined : cpu.machine - (cpu.design ?? 0) - (cpu.postgres ?? 0) - (cpu.capture ?? 0) - (cpu.bench ?? 0);
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
