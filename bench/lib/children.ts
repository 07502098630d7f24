/**
 * The bench's child processes: every one is started here, remembered by PID, and stopped by PID (SIGTERM,
 * then SIGKILL), at the end of its phase, at the end of the run, on Ctrl-C and on an uncaught error.
 * Each child also preloads `watchdog.js`, so it stops itself if the bench process dies without cleaning up
 * (plain JavaScript: a TypeScript preload loads Node's type stripper into every child, 13 MB more idle RSS for
 * the built worker command, 110 against 97 MB, that users' command does not carry).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { memoryBytes, signalQuietly } from '../../dev/processes.ts';

const here = import.meta.dirname;
export const BENCH_DIR = path.resolve(here, '..');
export const ROOT = path.resolve(BENCH_DIR, '..');
const WATCHDOG = path.join(here, 'watchdog.js');

export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly process: ChildProcess;
  /** stdout + stderr so far (the last 200 kB). */
  output(): string;
  /** Resolves with the exit code, or the signal that ended it. */
  readonly exited: Promise<number | NodeJS.Signals | null>;
  /** Resolves with the first output line that matches, rejects if the child exits first or after `timeoutMs`. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGTERM (or `signal`), then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

const live = new Map<number, Child>();

export interface SpawnOptions {
  /** Node flags before the script (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
  env?: Record<string, string | undefined>;
  /** Open an IPC channel (`process.send` in the child). */
  ipc?: boolean;
}

/** Starts `node [--import watchdog] <script> <args>` with the bench's Node (process.execPath). */
export function spawnNode(name: string, script: string, args: string[] = [], options: SpawnOptions = {}): Child {
  const env = { ...process.env, ...options.env };
  for (const [key, value] of Object.entries(env)) if (value === undefined) delete env[key];
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), '--import', WATCHDOG, script, ...args], {
    cwd: ROOT,
    env,
    stdio: options.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`${name}: could not start ${script}`);
  const pid = child.pid;
  let out = '';
  let partial = '';
  const lineWaiters = new Set<(line: string) => void>();
  const onData = (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    out = (out + text).slice(-200_000);
    partial += text;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) for (const waiter of [...lineWaiters]) waiter(line);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) =>
    child.once('exit', (code, signal) => {
      live.delete(pid);
      resolve(code ?? signal);
    }),
  );
  const handle: Child = {
    name,
    pid,
    process: child,
    output: () => out,
    exited,
    waitForLine(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const done = (error?: Error, line?: string) => {
          clearTimeout(timer);
          lineWaiters.delete(check);
          if (error) reject(error);
          else resolve(line!);
        };
        const check = (line: string) => {
          if (pattern.test(line)) done(undefined, line);
        };
        const timer = setTimeout(
          () => done(new Error(`${name}: no line matching ${pattern} within ${timeoutMs} ms; output:\n${out.slice(-3_000)}`)),
          timeoutMs,
        );
        lineWaiters.add(check);
        for (const line of out.split('\n')) if (pattern.test(line)) return done(undefined, line);
        void exited.then((code) =>
          done(new Error(`${name}: exited (${String(code)}) before printing a line matching ${pattern}; output:\n${out.slice(-3_000)}`)),
        );
      });
    },
    async stop(signal = 'SIGTERM', graceMs = 10_000) {
      if (!live.has(pid)) return void (await exited);
      signalQuietly(pid, signal);
      const timer = setTimeout(() => signalQuietly(pid, 'SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  live.set(pid, handle);
  return handle;
}

/** Stops every child still running (by PID), in parallel. */
export async function stopAllChildren(graceMs = 5_000): Promise<void> {
  await Promise.all([...live.values()].map((child) => child.stop('SIGTERM', graceMs)));
}

/** Synchronous last resort for `process.on('exit')`: SIGKILL whatever is left. */
export function killAllChildrenNow(): void {
  for (const pid of live.keys()) signalQuietly(pid, 'SIGKILL');
}

/** Peak resident set size of a live process, from /proc/<pid>/status (VmHWM), in bytes. */
export function peakRss(pid: number): Promise<number | undefined> {
  return memoryBytes(pid, 'VmHWM');
}

/** Current resident set size of a live process (VmRSS), in bytes. */
export function currentRss(pid: number): Promise<number | undefined> {
  return memoryBytes(pid, 'VmRSS');
}

/** The process's children (one level), from /proc. */
function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Peak RSS of a command and its children (the worker command runs the worker in a child: cli/heap.ts): the
 * sum of each one's VmHWM, an upper bound of the tree's peak (memory they share is counted in each).
 */
export async function treePeakRss(pid: number): Promise<number | undefined> {
  const peaks = await Promise.all([pid, ...childPids(pid)].map((p) => peakRss(p)));
  return peaks[0] === undefined ? undefined : peaks.reduce<number>((a, b) => a + (b ?? 0), 0);
}

/** Current RSS of a command and its children, summed. */
export async function treeCurrentRss(pid: number): Promise<number | undefined> {
  const now = await Promise.all([pid, ...childPids(pid)].map((p) => currentRss(p)));
  return now[0] === undefined ? undefined : now.reduce<number>((a, b) => a + (b ?? 0), 0);
}
