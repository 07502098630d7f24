/**
 * The fault suite's shared setup (test/reliability/faults-*.test.ts): real worker processes
 * (`posthog-outbox worker`) on a database and a capture server of the file's own, committed events and the
 * waits that end each scenario.
 */
import type { CaptureServer } from '../../dev/capture-server.ts';
import { attributedEvent, record } from '../../src/index.ts';
import type { TestDatabase } from './db.ts';
import { workerProcesses, type WorkerProcess } from './processes.ts';
import { outboxCount, until } from './worker.ts';

/** Short leases so a killed worker's rows come back quickly. */
export const FAST = ['--lease', '2s', '--request-timeout', '1s', '--batch-size', '500'];

export const context = (i: number) => ({
  organization: { id: `org_${i % 7}`, name: `Org ${i % 7}` },
  user: { id: `user_${i % 101}`, email: `u${i % 101}@example.com` },
  threadId: `t_${i}`,
});

export interface FaultSuite {
  readonly db: TestDatabase;
  readonly capture: CaptureServer;
  /** A worker process (`FAST` unless `args`; the capture server unless `host`), killed after the test. */
  spawnWorker(args?: string[], host?: string): WorkerProcess;
  /** Commits `n` events in transactions of `perTx`; returns their uuids. */
  commit(n: number, perTx?: number, from?: number): Promise<string[]>;
  /** Waits for the outbox to be empty. */
  drained(timeoutMs?: number): Promise<number>;
  /** Waits for every one of `uuids` to have arrived at the capture server. */
  arrived(uuids: readonly string[], timeoutMs?: number): Promise<unknown>;
}

/** The hooks of a fault-suite file (call at its top level), and its helpers. */
export function faultSuite(apiKey: string): FaultSuite {
  let db: TestDatabase | undefined;
  let capture: CaptureServer | undefined;
  const spawnWorker = workerProcesses(apiKey, (started) => ({ db, capture } = started), FAST);
  const suite: FaultSuite = {
    get db() {
      return db!;
    },
    get capture() {
      return capture!;
    },
    spawnWorker,
    async commit(n, perTx = 1000, from = 0) {
      const uuids: string[] = [];
      for (let start = 0; start < n; start += perTx) {
        const events = Array.from({ length: Math.min(perTx, n - start) }, (_, k) =>
          attributedEvent(context(from + start + k), 'tool_used', { seq: from + start + k }),
        );
        uuids.push(...(await db!.sql.begin((tx) => record(tx, events))));
      }
      return uuids;
    },
    drained: (timeoutMs = 120_000) =>
      until(
        () => outboxCount(db!.sql),
        (n) => n === 0,
        { timeoutMs, what: 'the outbox to drain' },
      ),
    arrived: (uuids, timeoutMs = 60_000) =>
      capture!.waitFor(
        () => {
          const counts = capture!.countsByUuid();
          return uuids.every((u) => counts.has(u));
        },
        { timeoutMs, what: 'every committed event' },
      ),
  };
  return suite;
}

/** Waits `ms` (only where a scenario itself needs time to pass: writers' pace, a random kill point). */
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
