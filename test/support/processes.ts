/** Worker processes for fault tests: the real CLI (`posthog-outbox worker`) as a child process. */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type postgres from 'postgres';
import { afterEach } from 'vitest';
import type { CaptureServer } from '../../dev/capture-server.ts';
import { CLI } from './cli.ts';
import { databaseAndCapture, type WorkerFixture } from './worker.ts';

export interface WorkerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** stdout + stderr so far. */
  output(): string;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  /** SIGTERM, and wait for the exit. */
  stop(): Promise<number | null>;
  /** SIGKILL, and wait for the exit. */
  kill(): Promise<number | null>;
}

export function startWorkerProcess(env: { databaseUrl: string; apiKey: string; host: string }, args: string[] = []): WorkerProcess {
  const child = spawn(process.execPath, [CLI, 'worker', ...args], {
    // As users run it: the command replaces itself under the sidecar heap limits (cli/heap.ts), same PID, so a
    // SIGKILL of this PID is a crash of the worker.
    env: { ...process.env, DATABASE_URL: env.databaseUrl, POSTHOG_API_KEY: env.apiKey, POSTHOG_HOST: env.host },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    pid: child.pid!,
    output: () => out,
    exited,
    async stop() {
      child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      child.kill('SIGKILL');
      return exited;
    },
  };
}

/**
 * The hooks of a test file that runs worker processes (`databaseAndCapture`); every worker spawned during a
 * test is killed after it. Returns how to spawn a worker (`defaultArgs` when no flags are given; the capture
 * server unless `host`).
 */
export function workerProcesses(
  apiKey: string,
  started: (fixture: WorkerFixture) => void,
  defaultArgs: string[] = [],
): (args?: string[], host?: string) => WorkerProcess {
  const fixture = databaseAndCapture(apiKey, started);
  let spawned: WorkerProcess[] = [];
  afterEach(async () => {
    await Promise.all(spawned.map((w) => (w.child.exitCode === null && w.child.signalCode === null ? w.kill() : undefined)));
    spawned = [];
  });
  return (args = defaultArgs, host = fixture().capture.url) => {
    const worker = startWorkerProcess({ databaseUrl: fixture().db.url, apiKey, host }, args);
    spawned.push(worker);
    return worker;
  };
}

export interface Summary {
  scenario: string;
  committed: number;
  delivered: number;
  duplicates: number;
  deadLettered: number;
  lost: number;
  seconds: number;
}

/**
 * What happened to the committed events: delivered (distinct uuids that arrived), duplicates (extra copies,
 * each with its uuid), dead-lettered, lost (committed, neither arrived nor dead-lettered nor still queued).
 * Prints the summary line and appends it to `.data/reliability.jsonl` (the figures of docs/reliability.md).
 */
export async function summarize(
  scenario: string,
  committed: readonly string[],
  capture: CaptureServer,
  sql: postgres.Sql,
  startedAt: number,
): Promise<Summary> {
  const counts = capture.countsByUuid();
  const dead = new Set((await sql<{ uuid: string }[]>`SELECT uuid FROM posthog_outbox.dead_letters`).map((r) => r.uuid));
  const queued = new Set((await sql<{ uuid: string }[]>`SELECT uuid FROM posthog_outbox.outbox`).map((r) => r.uuid));
  let delivered = 0;
  let duplicates = 0;
  let lost = 0;
  for (const uuid of committed) {
    const n = counts.get(uuid) ?? 0;
    if (n > 0) delivered++;
    duplicates += Math.max(0, n - 1);
    if (n === 0 && !dead.has(uuid) && !queued.has(uuid)) lost++;
  }
  const summary: Summary = {
    scenario,
    committed: committed.length,
    delivered,
    duplicates,
    deadLettered: dead.size,
    lost,
    seconds: Math.round((Date.now() - startedAt) / 100) / 10,
  };
  const line = `${scenario}: committed ${summary.committed}, delivered ${delivered}, duplicates ${duplicates} (same uuid), dead-lettered ${summary.deadLettered}, lost ${lost}, ${summary.seconds} s`;
  console.log(line);
  const dir = path.resolve(import.meta.dirname, '../../.data');
  mkdirSync(dir, { recursive: true });
  appendFileSync(path.join(dir, 'reliability.jsonl'), `${JSON.stringify({ ...summary, at: new Date().toISOString() })}\n`);
  return summary;
}
