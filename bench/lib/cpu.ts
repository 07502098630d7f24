/**
 * CPU time spent by processes, from /proc/<pid>/stat (user + system, in seconds): where a drain's CPU went
 * (the design's process, PostgreSQL, the capture endpoint). On a 2-core machine these compete for the same
 * cores, so a design that makes PostgreSQL work harder leaves less CPU to posthog-node.
 */
import { readdir, readFile } from 'node:fs/promises';

const TICKS = 100; // USER_HZ on Linux

interface Stat {
  ppid: number;
  /** utime + stime, seconds */
  own: number;
  /** cutime + cstime: children it waited for, seconds */
  children: number;
}

async function stat(pid: number): Promise<Stat | undefined> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime is field 14 -> index 11
    return {
      ppid: Number(fields[1]),
      own: (Number(fields[11]) + Number(fields[12])) / TICKS,
      children: (Number(fields[13]) + Number(fields[14])) / TICKS,
    };
  } catch {
    return undefined;
  }
}

/** CPU seconds of one process so far (0 when it is gone). */
export async function processCpu(pid: number): Promise<number> {
  return (await stat(pid))?.own ?? 0;
}

/**
 * CPU seconds of a process and its children so far: its own, its live children's and those it has reaped
 * (a PostgreSQL server's backends, walwriter, autovacuum...; the worker command's worker process).
 */
export async function treeCpu(pid: number): Promise<number> {
  const root = await stat(pid);
  if (!root) return 0;
  let total = root.own + root.children;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const child = await stat(Number(entry));
    if (child?.ppid === pid) total += child.own;
  }
  return total;
}

/** CPU seconds of a PostgreSQL server so far (`treeCpu` of its postmaster). */
export const postgresCpu = treeCpu;

/**
 * Busy CPU seconds of the whole machine so far (every core: user, nice, system, irq, softirq), from
 * /proc/stat; with `steal: true`, the seconds the hypervisor gave to someone else.
 */
export async function machineCpu(options: { steal?: boolean } = {}): Promise<number> {
  try {
    const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!;
    const [user, nice, system, _idle, _iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number) as number[];
    return (options.steal ? steal! : user! + nice! + system! + irq! + softirq!) / TICKS;
  } catch {
    return 0;
  }
}

export interface CpuSample {
  [name: string]: number;
}

/** Samples named CPU counters; `since(before)` gives the seconds each spent in between. */
export class CpuMeter {
  private readonly sources: Record<string, () => Promise<number>>;

  constructor(sources: Record<string, () => Promise<number>>) {
    this.sources = sources;
  }

  async sample(): Promise<CpuSample> {
    const entries = await Promise.all(Object.entries(this.sources).map(async ([name, read]) => [name, await read()] as const));
    return Object.fromEntries(entries);
  }

  async since(before: CpuSample): Promise<CpuSample> {
    const after = await this.sample();
    return Object.fromEntries(Object.keys(after).map((name) => [name, Math.round(((after[name] ?? 0) - (before[name] ?? 0)) * 100) / 100]));
  }
}
