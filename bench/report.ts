/** The table the bench prints on stdout. */
import type { DesignRun } from './designs/protocol.ts';
import type { WorkerDrain } from './drain.ts';
import { best, fmt, mb, ratio } from './report/format.ts';
import type { Results } from './report/results.ts';

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
