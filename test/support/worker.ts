/** Helpers for worker tests: a migrated database with pg-boss, and polling until the outbox is settled. */
import type postgres from 'postgres';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { startCaptureServer, type CaptureServer } from '../../dev/capture-server.ts';
import { startWorker, type OutboxWorker, type WorkerOptions } from '../../worker/index.ts';
import { installPgBoss } from '../../src/outbox/queue.ts';
import { createTestDatabase, type TestDatabase } from './db.ts';

export async function createWorkerDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase();
  await installPgBoss(db.url, 'posthog_outbox');
  return db;
}

export async function until<T>(probe: () => Promise<T> | T, done: (value: T) => boolean, { timeoutMs = 20_000, what = 'condition' } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await probe();
  while (!done(value)) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last value: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 25));
    value = await probe();
  }
  return value;
}

/**
 * Waits until the capture server has answered every request it has read (none pending, e.g. held by
 * `delayNext`, or a copy of an event still on its way): what it recorded is then all it will record of the
 * requests so far. After the outbox is empty no worker has anything left to send, so a test that asserts
 * nothing more arrived waits for this rather than sleeping.
 */
export function nothingInFlight(capture: CaptureServer, timeoutMs = 10_000): Promise<unknown> {
  return capture.waitForRequests((requests) => requests.every((r) => r.outcome !== 'pending'), { timeoutMs, what: 'no request in flight' });
}

/** Events in the outbox (a row each). */
export async function outboxCount(sql: postgres.Sql): Promise<number> {
  const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM posthog_outbox.outbox`;
  return row!.n;
}

/** Waits until the outbox holds no event (every row delivered, dead-lettered or superseded). */
export function outboxEmpty(sql: postgres.Sql, { timeoutMs = 20_000, what = 'the outbox to empty' } = {}): Promise<number> {
  return until(
    () => outboxCount(sql),
    (n) => n === 0,
    { what, timeoutMs },
  );
}

/** The worker's totals once they show `expected` (a run's counters are added when the run returns, just after its last commit). */
export function totalsReach(worker: { totals: Record<string, number> }, expected: Record<string, number>): Promise<Record<string, number>> {
  return until(
    () => ({ ...worker.totals }),
    (t) => Object.entries(expected).every(([k, v]) => t[k] === v),
    { what: `the worker's totals to reach ${JSON.stringify(expected)}` },
  );
}

export async function deadLetterRows(sql: postgres.Sql) {
  return sql<{ uuid: string; event: string; reason: string; attempts: number }[]>`
    SELECT uuid, event, reason, attempts FROM posthog_outbox.dead_letters ORDER BY event`;
}

/** Events a worker holds right now: those of the rows this check cannot lock (a claim is a row lock in the worker's transaction). */
export function heldRows(sql: postgres.Sql): Promise<number> {
  return sql.begin(async (tx) => {
    const [row] = await tx<{ n: number }[]>`
      SELECT ((SELECT count(*) FROM posthog_outbox.outbox)
        - (SELECT count(*) FROM (SELECT 1 FROM posthog_outbox.outbox FOR KEY SHARE SKIP LOCKED) AS free))::int AS n`;
    return row!.n;
  });
}

/** Every table of the outbox schema that tests empty between cases. */
export const OUTBOX_TABLES = 'posthog_outbox.outbox, posthog_outbox.dead_letters, posthog_outbox.target_health, posthog_outbox.identities';

export interface WorkerFixture {
  db: TestDatabase;
  capture: CaptureServer;
}

/**
 * The hooks every test file with workers shares: one database (migrated, pg-boss installed) and one capture
 * server accepting `apiKey` for the whole file, both emptied before each test. `started` receives them once
 * they are up; the returned function gives them to the caller's own hooks.
 */
export function databaseAndCapture(apiKey: string, started: (fixture: WorkerFixture) => void): () => WorkerFixture {
  let fixture: WorkerFixture | undefined;
  beforeAll(async () => {
    fixture = { db: await createWorkerDatabase(), capture: await startCaptureServer({ apiKey }) };
    started(fixture);
  });
  afterAll(async () => {
    await fixture?.capture.close();
    await fixture?.db.drop();
  });
  beforeEach(async () => {
    fixture!.capture.reset();
    await fixture!.db.sql.unsafe(`TRUNCATE ${OUTBOX_TABLES}`);
  });
  return () => fixture!;
}

/**
 * The hooks of a test file that runs in-process workers (`databaseAndCapture`); every worker started during
 * a test is stopped after it. Returns how to start a worker: `defaults`, then the test's own options, over
 * the capture server as PostHog.
 */
export function inProcessWorkers(
  apiKey: string,
  started: (fixture: WorkerFixture) => void,
  defaults: Partial<WorkerOptions> & { requestTimeoutMs?: number } = {},
): (options?: Partial<WorkerOptions>) => Promise<OutboxWorker> {
  const fixture = databaseAndCapture(apiKey, started);
  const running: OutboxWorker[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((w) => w.stop(5_000)));
  });
  const { requestTimeoutMs, ...workerDefaults } = defaults;
  return async (options = {}) => {
    const { db, capture } = fixture();
    const worker = await startWorker({
      databaseUrl: db.url,
      posthog: { apiKey, host: capture.url, ...(requestTimeoutMs !== undefined ? { requestTimeoutMs } : {}) },
      ...workerDefaults,
      ...options,
    });
    running.push(worker);
    return worker;
  };
}
