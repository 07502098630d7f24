/**
 * Two workers (two `startWorker` instances, each with its own connections and pg-boss) draining one outbox
 * side by side: FOR UPDATE SKIP LOCKED claims with a lease mean every event arrives, and, with no faults,
 * each exactly once.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCaptureServer, type CaptureServer } from '../../dev/capture-server.ts';
import type { OutboxEvent } from '../../src/record/event.ts';
import { record } from '../../src/record/record.ts';
import { startWorker, type OutboxWorker } from '../../worker/index.ts';
import type { TestDatabase } from '../support/db.ts';
import { createWorkerDatabase, deadLetterRows, nothingInFlight, outboxEmpty } from '../support/worker.ts';

let db: TestDatabase;
let capture: CaptureServer;
let workers: OutboxWorker[] = [];

beforeAll(async () => {
  db = await createWorkerDatabase();
  capture = await startCaptureServer({ apiKey: 'phc_test' });
});
afterAll(async () => {
  await capture?.close();
  await db?.drop();
});
afterEach(async () => {
  await Promise.all(workers.map((w) => w.stop(5_000)));
  workers = [];
});

const event = (i: number): OutboxEvent => ({ event: 'tool_called', distinctId: `user_${i % 97}`, properties: { seq: i }, groups: {}, profiles: {} });

describe('two workers on one outbox', () => {
  it('drain a backlog of 10,000 events concurrently: every uuid arrives, each exactly once', async () => {
    const options = { databaseUrl: db.url, posthog: { apiKey: 'phc_test', host: capture.url, requestTimeoutMs: 10_000 }, batchSize: 100, concurrency: 2 };
    // Both are up before the backlog is committed, and the first 40 requests take 200 ms: whichever worker's
    // idle probe (every 20-500 ms) finds the backlog first cannot drain it all before the other's finds it too.
    workers = await Promise.all([startWorker(options), startWorker(options)]);
    capture.delayNext(40, 200);
    const committed: string[] = [];
    await db.sql.begin(async (tx) => {
      for (let start = 0; start < 10_000; start += 1_000)
        committed.push(
          ...(await record(
            tx,
            Array.from({ length: 1_000 }, (_, k) => event(start + k)),
          )),
        );
    });
    expect(new Set(committed).size).toBe(10_000);

    await capture.waitFor(10_000, { timeoutMs: 120_000, what: 'the backlog' });
    await outboxEmpty(db.sql, { timeoutMs: 60_000, what: 'the outbox to empty' });
    await nothingInFlight(capture); // anything still in flight has arrived

    const counts = capture.countsByUuid();
    const missing = committed.filter((uuid) => !counts.has(uuid));
    expect(missing).toEqual([]);
    expect(capture.duplicates()).toEqual([]);
    expect(capture.events).toHaveLength(10_000);
    expect([...counts.keys()].sort()).toEqual([...committed].sort());
    expect(await deadLetterRows(db.sql)).toEqual([]);
    // Both took part, and between them claimed each row once (no row was claimed twice, none was retried).
    const [a, b] = workers.map((w) => w.totals);
    expect(a!.delivered).toBeGreaterThan(0);
    expect(b!.delivered).toBeGreaterThan(0);
    expect(a!.delivered + b!.delivered).toBe(10_000);
    expect(a!.claimed + b!.claimed).toBe(10_000);
    expect(a!.retried + b!.retried).toBe(0);
    // No request mixed events of two claims: at most one batch's worth each.
    for (const request of capture.requests) expect(request.events).toBeLessThanOrEqual(100);
  }, 180_000);
});
