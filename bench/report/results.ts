/**
 * The bench's results: the figures of every phase, the machine they were measured on, and the JSON file
 * written to .data/bench-results/ and, for a complete full run, bench/results/latest.json (the table on stdout is table.ts, the issue-5 targets targets.ts).
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { cpus, release, totalmem, type } from 'node:os';
import path from 'node:path';
import type { DesignRun } from '../designs/protocol.ts';
import type { WorkerDrain } from '../drain.ts';
import type { LatencyResult } from '../latency.ts';
import { round } from '../lib/stats.ts';
import type { WriteCostRow } from '../write-cost.ts';

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
  drain?: DrainResults;
  latency?: LatencyResult;
  scaling?: WorkerDrain[];
  targets?: Target[];
  /** Phases that failed, with the error (the bench reports them and goes on). */
  errors: { phase: string; error: string }[];
}

/** The drain phase: every design's runs on the same backlog size. */
export interface DrainResults {
  events: number;
  bare: DesignRun[];
  reference: DesignRun[];
  rawDelete: DesignRun[];
  jobPerEvent: DesignRun[];
  worker: WorkerDrain[];
}

export interface Target {
  target: string;
  measured: string;
  /** measured / limit, oriented so that >= 1 means met. */
  score: number | null;
  met: boolean | null;
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
      // Unrounded: the targets compare these with their limits (a 0.7497 rounded to 0.750 once counted as met).
      medianAt1: at1 && none1 ? at1.medianMs / none1.medianMs : null,
      commitsAt16: at16 && none16 ? at16.txPerSecond / none16.txPerSecond : null,
    };
  }
  return { durable, variants };
}

/** Writes `results` to `file` as JSON (through a .tmp file, so a reader never sees half of it). */
async function writeJson(file: string, results: Results): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(`${file}.tmp`, `${JSON.stringify(results, (_key, value: unknown) => (typeof value === 'number' ? round(value, 5) : value), 2)}\n`);
  await rename(`${file}.tmp`, file);
}

/**
 * Writes the results to `<runs>/<timestamp>.json` (git-ignored: every run, quick or partial ones included) and
 * returns the path. A full run of every phase without errors also replaces `latest`, the one committed file
 * (bench/results/latest.json) that docs/performance.md quotes: the figures are summarised there, not accumulated.
 */
export async function writeResults(runs: string, latest: string, results: Results, everyPhase: boolean): Promise<string[]> {
  const name = `${results.startedAt.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z')}.json`;
  const file = path.join(runs, name);
  await writeJson(file, results);
  if (results.mode !== 'full' || !everyPhase || results.errors.length > 0) return [file];
  await writeJson(latest, results);
  return [file, latest];
}
