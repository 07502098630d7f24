/**
 * The targets in force, evaluated as ratios within the run (a timing miss is reported, never fails the run):
 * drain throughput and CPU against the reference outbox, the handler's write cost, commit-to-endpoint latency,
 * and the worker's memory and throughput as the backlog grows. (Retired: 1.4x the bare posthog-node ceiling and
 * 5x job-per-event, which measured how the designs shared two cores more than the designs themselves.)
 */
import type { WorkerDrain } from '../drain.ts';
import { round } from '../lib/stats.ts';
import { best, fmt } from './format.ts';
import type { Results, Target } from './results.ts';

function atLeast(target: string, measured: number | undefined, limit: number, show: (n: number) => string): Target {
  if (measured === undefined || !Number.isFinite(measured)) return { target, measured: 'not measured', score: null, met: null };
  return { target, measured: show(measured), score: round(measured / limit, 3), met: measured >= limit };
}

function atMost(target: string, measured: number | undefined, limit: number, show: (n: number) => string): Target {
  if (measured === undefined || !Number.isFinite(measured)) return { target, measured: 'not measured', score: null, met: null };
  return { target, measured: show(measured), score: round(limit / measured, 3), met: measured <= limit };
}

const x = (n: number) => `${n.toFixed(2)}x`;
/** The write-cost ratios sit close to their limits: three decimals, so a miss never reads as the limit itself. */
const x3 = (n: number) => `${n.toFixed(3)}x`;

export function evaluateTargets(results: Results): Target[] {
  return [...drainTargets(results), ...writeCostTargets(results), ...latencyTargets(results), ...scalingTargets(results)];
}

function drainTargets(results: Results): Target[] {
  const drain = results.drain;
  const worker = best(drain?.worker);
  const reference = best(drain?.reference);
  const defaults = best(drain?.worker.filter((w) => w.settings.isDefault));
  return [
    atLeast('drain (best worker settings) >= reference outbox', worker && reference && worker.eventsPerSecond / reference.eventsPerSecond, 1, x),
    atLeast('drain (worker defaults) >= reference outbox', defaults && reference && defaults.eventsPerSecond / reference.eventsPerSecond, 1, x),
    atMost(
      'drain (worker defaults) CPU per event, process + PostgreSQL <= 1.1x reference outbox',
      defaults && reference && cpuPerEvent(defaults) / cpuPerEvent(reference),
      1.1,
      x,
    ),
  ];
}

/** Core-seconds per backlog event of a drain: its own process (tree) and PostgreSQL's. */
function cpuPerEvent(run: { events: number; cpu: Record<string, number> }): number {
  return ((run.cpu.design ?? 0) + (run.cpu.postgres ?? 0)) / run.events;
}

/** The handler's cost, from the ratios the JSON file carries for scripts; none when the phase did not run. */
function writeCostTargets(results: Results): Target[] {
  const ratios = results.writeCostRatios?.variants;
  if (!ratios) return [];
  const durable = results.writeCostRatios!.durable ? 'durable' : 'throwaway settings';
  const r = (variant: string) => ratios[variant] ?? { medianAt1: null, commitsAt16: null };
  return [
    atMost(
      `handler tx + 1 event, pipelined: median <= 1.25x without (1 connection, ${durable})`,
      r('1 outbox event, pipelined').medianAt1 ?? undefined,
      1.25,
      x3,
    ),
    atLeast(`handler tx + 1 event: commits/s >= 0.75x without (16 connections, ${durable})`, r('1 outbox event').commitsAt16 ?? undefined, 0.75, x3),
    atMost(
      `handler tx + 5 events, pipelined: median <= 1.5x without (1 connection, ${durable})`,
      r('5 outbox events, pipelined').medianAt1 ?? undefined,
      1.5,
      x3,
    ),
    atLeast(`handler tx + 5 events: commits/s >= 0.6x without (16 connections, ${durable})`, r('5 outbox events').commitsAt16 ?? undefined, 0.6, x3),
  ];
}

/** Commit-to-endpoint p99 at a steady rate, and what the same worker costs its database once idle ("a few cheap queries a second"). */
function latencyTargets(results: Results): Target[] {
  const latency = results.latency;
  return [
    atMost(`commit-to-endpoint p99 <= 100 ms at ${latency?.targetRate ?? 1000} events/s`, latency?.p99Ms, 100, (n) => `${fmt(n)} ms`),
    atMost('idle worker: statements/s on its database <= 5 (BEGIN/COMMIT included)', latency?.idle.statementsPerSecond, 5, (n) => `${fmt(n, 1)}/s`),
  ];
}

/** Memory on the largest backlog (against Node's own heap sizing) and throughput from the smallest to the largest. */
function scalingTargets(results: Results): Target[] {
  const allScaling = results.scaling ?? [];
  const scaling = allScaling.filter((s) => !s.settings.nodeHeap);
  const nodeHeap = allScaling.find((s) => s.settings.nodeHeap);
  const largest = scaling.reduce<WorkerDrain | undefined>((a, b) => (!a || b.events > a.events ? b : a), undefined);
  const smallest = best(scaling.filter((s) => s.events === Math.min(...scaling.map((t) => t.events))));
  const largestBest = best(scaling.filter((s) => s.events === largest?.events));
  const sizeLabel = largest ? (largest.events >= 1_000_000 ? `${largest.events / 1_000_000}M` : `${largest.events / 1000}k`) : '1M';
  const nodeHeapPeak = nodeHeap?.peakRssBytes ? `${Math.round(nodeHeap.peakRssBytes / 1024 / 1024)} MB peak` : 'not measured';
  return [
    atMost(
      `worker command peak RSS <= 200 MB on a ${sizeLabel} backlog (defaults: its sidecar heap)`,
      largestBest?.peakRssBytes && largestBest.peakRssBytes / 1024 / 1024,
      200,
      (n) => `${Math.round(n)} MB`,
    ),
    atLeast(
      `  at >= 0.9x the events/s of Node's own heap (${nodeHeapPeak})`,
      nodeHeap && largestBest ? largestBest.eventsPerSecond / nodeHeap.eventsPerSecond : undefined,
      0.9,
      x,
    ),
    atLeast(
      `throughput at ${sizeLabel} within 20% of throughput at ${smallest ? `${smallest.events / 1000}k` : '10k'}`,
      largestBest && smallest && largestBest !== smallest ? largestBest.eventsPerSecond / smallest.eventsPerSecond : undefined,
      0.8,
      x,
    ),
  ];
}
