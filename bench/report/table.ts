/**
 * The table the bench prints on stdout: a heading, then one section per phase that ran (each a blank line,
 * a title, a table and notes), the issue-5 targets, and the phases that failed.
 */
import type { LatencyResult } from '../latency.ts';
import type { WriteCostRow } from '../write-cost.ts';
import { drainSection } from './drain-table.ts';
import { type Column, fmt, ratio, table } from './format.ts';
import type { Results, Target } from './results.ts';
import { scalingSection } from './scaling-table.ts';

/** A section's lines, none when its phase did not run. */
export type Section = (results: Results) => string[];

const SECTIONS: readonly Section[] = [writeCostSection, drainSection, latencySection, scalingSection, targetsSection, errorsSection];

export function renderTable(results: Results): string {
  return [heading(results), ...SECTIONS.flatMap((section) => section(results))].join('\n');
}

function heading(results: Results): string {
  const m = results.machine;
  const title = `posthog-outbox benchmark (${results.mode}${results.mode === 'quick' ? ': small backlogs, short runs' : ''}), ${results.startedAt}`;
  if (!m) return title;
  return (
    `${title}\n${m.cores} cores (${m.cpuModel}), ${m.memoryGb} GB, ${m.os}; Node ${m.node}; ` +
    `PostgreSQL ${m.postgres} (embedded, fsync ${m.postgresSettings.fsync}, synchronous_commit ${m.postgresSettings.synchronous_commit}); ` +
    `posthog-node ${m.packages['posthog-node']}, pg-boss ${m.packages['pg-boss']}`
  );
}

function writeCostSection(results: Results): string[] {
  const rows = results.writeCost;
  if (!rows) return [];
  const none = new Map(rows.filter((r) => r.variant === 'no analytics').map((r) => [r.connections, r]));
  const vsNone = (r: WriteCostRow, key: 'medianMs' | 'txPerSecond') => ratio(r[key] / (none.get(r.connections)?.[key] ?? Number.NaN));
  const columns: Column<WriteCostRow>[] = [
    { header: 'variant', align: 'l', cell: (r) => r.variant },
    { header: 'connections', align: 'r', cell: (r) => String(r.connections) },
    { header: 'median ms', align: 'r', cell: (r) => fmt(r.medianMs, 2) },
    { header: 'p99 ms', align: 'r', cell: (r) => fmt(r.p99Ms, 2) },
    { header: 'tx/s', align: 'r', cell: (r) => fmt(r.txPerSecond) },
    { header: 'median vs none', align: 'r', cell: (r) => vsNone(r, 'medianMs') },
    { header: 'tx/s vs none', align: 'r', cell: (r) => vsNone(r, 'txPerSecond') },
  ];
  const postgres = results.durable === false ? 'with throwaway settings (fsync off)' : 'durable (fsync, synchronous_commit on)';
  const other = results.writeCostOtherLoad === undefined ? '' : `; other load ${Math.round(results.writeCostOtherLoad * 100)}%`;
  return [
    '',
    'Write cost: handler transaction (drizzle over postgres.js: insert a ~1 KB chat-message row into an indexed table) with and without analytics, ' +
      `PostgreSQL ${postgres}; variants take turns${other}`,
    table(columns, rows),
  ];
}

const LATENCY_COLUMNS: readonly Column<LatencyResult>[] = [
  { header: 'committed', align: 'r', cell: (l) => fmt(l.committed) },
  { header: 'events/s', align: 'r', cell: (l) => fmt(l.achievedRate) },
  { header: 'p50 ms', align: 'r', cell: (l) => fmt(l.p50Ms, 1) },
  { header: 'p95 ms', align: 'r', cell: (l) => fmt(l.p95Ms, 1) },
  { header: 'p99 ms', align: 'r', cell: (l) => fmt(l.p99Ms, 1) },
  { header: 'max ms', align: 'r', cell: (l) => fmt(l.maxMs, 1) },
  { header: 'missing', align: 'r', cell: (l) => fmt(l.missing) },
  { header: '$identify per event', align: 'r', cell: (l) => fmt(l.identifyPerEvent, 2) },
];

function latencySection(results: Results): string[] {
  const latency = results.latency;
  if (!latency) return [];
  return [
    '',
    `Commit-to-endpoint latency: ${fmt(latency.targetRate)} events/s for ${latency.seconds} s (1 event per handler transaction), project worker with defaults`,
    table(LATENCY_COLUMNS, [latency]),
    `Idle worker afterwards (${latency.idle.seconds} s): ${fmt(latency.idle.statementsPerSecond, 1)} statements/s on its database, BEGIN/COMMIT included; most frequent:`,
    ...latency.idle.top.map((t) => `  ${fmt(t.perSecond, 2)}/s  ${t.query}`),
  ];
}

const TARGET_COLUMNS: readonly Column<Target>[] = [
  { header: '', align: 'l', cell: (t) => (t.met === null ? '?' : t.met ? 'met' : 'MISSED') },
  { header: 'target', align: 'l', cell: (t) => t.target },
  { header: 'measured', align: 'l', cell: (t) => t.measured },
  {
    header: 'margin',
    align: 'l',
    cell: (t) => (t.score === null ? '' : t.met ? `${((t.score - 1) * 100).toFixed(0)}% to spare` : `${((1 - t.score) * 100).toFixed(0)}% short`),
  },
];

function targetsSection(results: Results): string[] {
  if (!results.targets) return [];
  return ['', 'Targets in force (ratios within this run; a timing miss is reported, never fails the run)', table(TARGET_COLUMNS, results.targets)];
}

function errorsSection(results: Results): string[] {
  return results.errors.flatMap((e) => ['', `FAILED: ${e.phase}: ${e.error}`]);
}
