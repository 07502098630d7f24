/** The demo's worker: started with quiet logs, and watched until the outbox is empty and the worker idle. */
import { setTimeout as sleep } from 'node:timers/promises';
import type postgres from 'postgres';
import { readStatus } from '../../src/ops/index.ts';
import { startWorker, type OutboxWorker } from '../../worker/index.ts';
import { Interrupted, type DemoSession } from './session.ts';

/** Rows in the demo's outbox. */
export async function backlog(sql: postgres.Sql, schema: string): Promise<number> {
  return (await readStatus(sql, { schema, limit: 0 })).backlog;
}

export interface WorkerTarget {
  databaseUrl: string;
  posthog: { apiKey: string; host: string };
  schema: string;
  verbose: boolean;
}

/** Starts the worker; it is stopped with the session, and its runs' errors are kept for the delivery line. */
export async function startDemoWorker(
  target: WorkerTarget,
  session: DemoSession,
  onOwnServer: boolean,
): Promise<{ worker: OutboxWorker; lastError: () => string | undefined }> {
  const errors: string[] = [];
  const worker = await startWorker({
    databaseUrl: target.databaseUrl,
    posthog: target.posthog,
    schema: target.schema,
    logger: await workerLogger(target.verbose, session.signal),
  });
  session.started('worker', async () => {
    // Interrupted on the embedded server, which is about to be deleted: no point waiting for batches in
    // flight. And when PostgreSQL is already gone, the worker's connections wait out their own end
    // timeout: not waited for (the process exits once everything else is stopped).
    const ms = session.stopping && !onOwnServer ? 1_000 : 5_000;
    await Promise.race([worker.stop(ms), sleep(ms + 1_000, undefined, { ref: false })]);
  });
  worker.on('pass', (stats) => {
    if (stats.error) errors.push(stats.error);
  });
  return { worker, lastError: () => errors.at(-1) };
}

async function workerLogger(verbose: boolean, stopping: AbortSignal) {
  if (verbose) {
    const { pino } = await import('pino');
    return pino({ base: { service: 'posthog-outbox-demo' } }, pino.destination(2));
  }
  // Quiet: the demo prints the totals; a failure is reported by the delivery line. Nothing once stopping.
  const problem = (object: object, message?: string) => {
    if (!stopping.aborted) process.stderr.write(`worker: ${message ?? ''} ${JSON.stringify(object)}\n`);
  };
  return { info() {}, warn: problem, error: problem };
}

export type Settled = { empty: true; backlog: 0; at: number } | { empty: false; backlog: number; at: number };

/**
 * Waits until the outbox is empty and the worker is done: its last run queued no $identify rows and nothing
 * ran for a moment (a run deletes what it delivered before it writes the $identify rows of its entities).
 */
export async function waitForDelivery(sql: postgres.Sql, schema: string, worker: OutboxWorker, timeoutMs: number, signal: AbortSignal): Promise<Settled> {
  let lastRunAt = Date.now();
  let lastIdentified = 0;
  const onRun = (stats: { identified: number }) => {
    lastRunAt = Date.now();
    lastIdentified = stats.identified;
  };
  worker.on('pass', onRun);
  worker.kick();
  const deadline = Date.now() + timeoutMs;
  let emptySince: number | undefined;
  try {
    for (;;) {
      const rows = await backlog(sql, schema);
      const now = Date.now();
      if (rows === 0) {
        emptySince ??= now;
        if (lastIdentified === 0 && now - lastRunAt >= 300 && now - emptySince >= 300) return { empty: true, backlog: 0, at: emptySince };
      } else {
        emptySince = undefined;
      }
      if (now > deadline) return { empty: false, backlog: rows, at: now };
      await sleep(50, undefined, { signal });
    }
  } catch (error) {
    if (signal.aborted) throw new Interrupted();
    throw error;
  } finally {
    worker.off('pass', onRun);
  }
}
