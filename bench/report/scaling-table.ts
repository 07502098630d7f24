/**
 * The scaling section of the report: the project worker (defaults) on growing backlogs, best run per size,
 * and the largest once more with Node's own heap sizing.
 */
import type { WorkerDrain } from '../drain.ts';
import { best, type Column, fmt, mb, ratio, table } from './format.ts';
import type { Results } from './results.ts';

/** One row: every run on one backlog size. */
interface Size {
  size: number;
  runs: WorkerDrain[];
  best: WorkerDrain;
}

export function scalingSection(results: Results): string[] {
  const scaling = results.scaling?.filter((s) => !s.settings.nodeHeap);
  const nodeHeapRun = results.scaling?.find((s) => s.settings.nodeHeap);
  if (!scaling || scaling.length === 0) return [];
  const sizes = [...new Set(scaling.map((s) => s.events))].sort((a, b) => a - b);
  const base = best(scaling.filter((s) => s.events === sizes[0]));
  const rows = sizes.map((size) => {
    const runs = scaling.filter((s) => s.events === size);
    return { size, runs, best: best(runs)! };
  });
  const columns: Column<Size>[] = [
    { header: 'backlog', align: 'r', cell: (s) => fmt(s.size) },
    { header: 'runs', align: 'r', cell: (s) => String(s.runs.length) },
    { header: 'events/s', align: 'r', cell: (s) => fmt(s.best.eventsPerSecond) },
    { header: `vs ${fmt(sizes[0])}`, align: 'r', cell: (s) => ratio(base && s.best.eventsPerSecond / base.eventsPerSecond) },
    { header: 'drain s', align: 'r', cell: (s) => fmt(s.best.seconds, 1) },
    { header: 'settled s', align: 'r', cell: (s) => fmt(s.best.settledSeconds, 1) },
    { header: 'RSS when started', align: 'r', cell: (s) => mb(Math.max(...s.runs.map((r) => r.startRssBytes ?? 0))) },
    { header: 'peak RSS', align: 'r', cell: (s) => mb(Math.max(...s.runs.map((r) => r.peakRssBytes ?? 0))) },
  ];
  const out = [
    '',
    'Scaling: the project worker (defaults) on growing backlogs (best of the runs at each size; RSS when started: before draining anything)',
    table(columns, rows),
  ];
  if (nodeHeapRun) {
    const same = best(scaling.filter((s) => s.events === nodeHeapRun.events));
    out.push(
      `with Node's own heap sizing (POSTHOG_OUTBOX_HEAP=node), ${fmt(nodeHeapRun.events)}: ${fmt(nodeHeapRun.eventsPerSecond)} events/s, peak RSS ${mb(nodeHeapRun.peakRssBytes ?? 0)}; ` +
        `the sidecar heap (defaults) ran at ${ratio(same && same.eventsPerSecond / nodeHeapRun.eventsPerSecond)} of that`,
    );
  }
  return out;
}
