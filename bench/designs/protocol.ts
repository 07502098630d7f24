/**
 * How the bench runs a drain design in a child process of its own, so designs never share an event loop.
 *
 * Child side (`serveDesign`): read the settings from the environment, connect and prepare everything that
 * is not part of the drain (build events, start pg-boss), send `ready`; on `go`, drain; a design that knows
 * when it is done sends `done` with its own figures; on `stop` (or when the bench disappears), clean up and
 * exit.
 *
 * Bench side (`runDesign`): start the child, wait for `ready`, note the time and send `go`, and take the time
 * the drain ended from the capture endpoint (when the last of the backlog's events was accepted) or, for a
 * design without HTTP, from the child's `done`.
 */
import path from 'node:path';
import { now } from '../lib/clock.ts';
import { BENCH_DIR, peakRss, spawnNode } from '../lib/children.ts';
import type { CaptureEndpoint } from '../lib/capture.ts';
import { CpuMeter, machineCpu, postgresCpu, processCpu, type CpuSample } from '../lib/cpu.ts';

export const API_KEY = 'phc_bench_project_key';

export interface DesignEnv {
  databaseUrl: string;
  /** The capture endpoint, as posthog-node's `host`. */
  host: string;
  apiKey: string;
  params: Record<string, number>;
}

export interface Design {
  /** Drains; resolves with figures of its own (processed rows...) when the design knows it is done. */
  go(): Promise<Record<string, number> | void>;
  stop(): Promise<void>;
}

type ToChild = { type: 'go' } | { type: 'stop' };

/** Child side: prepare, then drain on `go`. */
export async function serveDesign(prepare: (env: DesignEnv) => Promise<Design>): Promise<void> {
  const env: DesignEnv = {
    databaseUrl: process.env.DATABASE_URL!,
    host: process.env.POSTHOG_HOST!,
    apiKey: process.env.POSTHOG_API_KEY!,
    params: JSON.parse(process.env.BENCH_PARAMS ?? '{}') as Record<string, number>,
  };
  const design = await prepare(env);
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await design.stop().catch(() => undefined);
    process.exit(0);
  };
  process.on('message', (message: ToChild) => {
    if (message.type === 'go') {
      const started = now();
      design.go().then(
        (figures) => process.send?.({ type: 'done', at: now(), ms: now() - started, ...(figures ?? {}) }),
        (error: unknown) => {
          process.stderr.write(`drain failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
          process.exit(1);
        },
      );
    } else if (message.type === 'stop') {
      void stop();
    }
  });
  process.on('disconnect', () => void stop());
  process.on('SIGTERM', () => void stop());
  process.send?.({ type: 'ready' });
}

export interface DesignRun {
  design: string;
  params: Record<string, number>;
  events: number;
  seconds: number;
  eventsPerSecond: number;
  /** Peak RSS of the design's process (VmHWM), bytes. */
  peakRssBytes: number | undefined;
  /** CPU seconds during the drain: the design's process, PostgreSQL, the capture endpoint, the whole machine (busy, and stolen by the hypervisor). */
  cpu: CpuSample;
  /** The child's own figures, when it reported `done`. */
  figures?: Record<string, number>;
}

export interface RunDesignOptions {
  /** Short name, e.g. `reference-outbox`. */
  design: string;
  /** File under bench/designs/. */
  script: string;
  databaseUrl: string;
  /** PID of the PostgreSQL postmaster (for the CPU figures). */
  postmasterPid: number;
  capture: CaptureEndpoint;
  /** Bench events the drain must deliver. */
  events: number;
  params?: Record<string, number>;
  /** `capture`: done when the endpoint accepted `events`; `child`: done when the child says so (no HTTP). */
  until: 'capture' | 'child';
  timeoutMs: number;
  /** Extra node flags for the child (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
}

export async function runDesign(options: RunDesignOptions): Promise<DesignRun> {
  const params = options.params ?? {};
  options.capture.reset();
  const child = spawnNode(options.design, path.join(BENCH_DIR, 'designs', options.script), [], {
    ipc: true,
    nodeArgs: options.nodeArgs ?? [],
    env: { DATABASE_URL: options.databaseUrl, POSTHOG_HOST: options.capture.url, POSTHOG_API_KEY: API_KEY, BENCH_PARAMS: JSON.stringify(params) },
  });
  try {
    const failed = child.exited.then((code) => {
      throw new Error(`${options.design} exited (${String(code)}) before it finished:\n${child.output().slice(-3_000)}`);
    });
    failed.catch(() => undefined);
    const message = <T extends { type: string }>(type: string) =>
      new Promise<T>((resolve) => {
        const listener = (m: T) => {
          if (m.type !== type) return;
          child.process.off('message', listener);
          resolve(m);
        };
        child.process.on('message', listener);
      });
    const timeout = <T>(promise: Promise<T>, what: string) =>
      Promise.race([
        promise,
        failed,
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error(`${options.design}: ${what} took over ${options.timeoutMs / 1000} s`)), options.timeoutMs).unref(),
        ),
      ]);
    await timeout(message('ready'), 'getting ready');
    const done = message<{ type: 'done'; at: number } & Record<string, number>>('done');
    const meter = new CpuMeter({
      design: () => processCpu(child.pid),
      postgres: () => postgresCpu(options.postmasterPid),
      capture: () => processCpu(options.capture.child.pid),
      bench: () => processCpu(process.pid),
      machine: () => machineCpu(),
      steal: () => machineCpu({ steal: true }),
    });
    const cpuBefore = await meter.sample();
    const started = now();
    child.process.send({ type: 'go' });
    let ended: number;
    let figures: Record<string, number> | undefined;
    if (options.until === 'capture') {
      ended = (await timeout(options.capture.waitFor(options.events, options.timeoutMs + 1_000), 'the drain')).at;
    } else {
      const { type: _type, at, ...rest } = await timeout(done, 'the drain');
      ended = at;
      figures = rest;
    }
    const cpu = await meter.since(cpuBefore);
    const seconds = (ended - started) / 1000;
    const peakRssBytes = await peakRss(child.pid);
    return {
      design: options.design,
      params,
      events: options.events,
      seconds,
      eventsPerSecond: options.events / seconds,
      peakRssBytes,
      cpu,
      ...(figures ? { figures } : {}),
    };
  } finally {
    if (child.process.connected) child.process.send({ type: 'stop' });
    await child.stop('SIGTERM', 10_000);
  }
}
