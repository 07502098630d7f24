/** The bench's flags (listed in bench/run.ts) and the sizes of a quick and a full run. */
import type { WorkerSettings } from '../drain.ts';

/** The phases, in the order they run. */
export const PHASES = ['write', 'drain', 'latency', 'scaling'] as const;
export type Phase = (typeof PHASES)[number];

/** Written to the JSON file as it is (plus the phases that ran). */
export interface BenchConfig {
  writeSeconds: number;
  writeRounds: number;
  writeConnections: number[];
  drainEvents: number;
  drainRounds: number;
  jobEvents: number;
  jobBatchSizes: number[];
  workerSweep: WorkerSettings[];
  latencySeconds: number;
  latencyRate: number;
  /** Seconds the idle worker is watched after the latency run. */
  idleSeconds: number;
  scaling: number[];
}

const QUICK: BenchConfig = {
  writeSeconds: 1,
  writeRounds: 2,
  writeConnections: [1, 16],
  drainEvents: 20_000,
  drainRounds: 1,
  jobEvents: 10_000,
  jobBatchSizes: [100, 1000],
  workerSweep: [{ processes: 2 }],
  latencySeconds: 5,
  latencyRate: 1000,
  idleSeconds: 5,
  scaling: [10_000, 10_000, 50_000],
};

const FULL: BenchConfig = {
  writeSeconds: 6,
  writeRounds: 12, // half-second slices: a checkpoint or a slow fsync lands on every variant alike
  writeConnections: [1, 16],
  drainEvents: 200_000,
  drainRounds: 2,
  jobEvents: 200_000,
  jobBatchSizes: [50, 200, 1000],
  workerSweep: [{ concurrency: 1 }, { concurrency: 4 }, { processes: 2 }, { processes: 2, concurrency: 1 }, { nodeHeap: true }],
  latencySeconds: 30,
  latencyRate: 1000,
  idleSeconds: 20,
  scaling: [10_000, 10_000, 10_000, 100_000, 1_000_000],
};

export interface BenchOptions {
  quick: boolean;
  cpuProf: boolean;
  throwaway: boolean;
  phases: Set<string>;
  config: BenchConfig;
}

/** Reads the command line; throws on an unknown phase in --only. */
export function parseOptions(args: readonly string[]): BenchOptions {
  const quick = args.includes('--quick');
  const only = args
    .find((a) => a.startsWith('--only='))
    ?.slice('--only='.length)
    .split(',');
  const phases = new Set<string>(only ?? PHASES);
  for (const phase of phases) if (!(PHASES as readonly string[]).includes(phase)) throw new Error(`unknown phase ${phase}; phases: ${PHASES.join(', ')}`);
  return { quick, cpuProf: args.includes('--cpu-prof'), throwaway: args.includes('--throwaway'), phases, config: quick ? QUICK : FULL };
}
