/**
 * The worker's database connections fail under a batch in the two ways a production network offers:
 *
 * - closed by the server while the batch's transaction runs (a failover, a restart, an idle-session killer).
 *   postgres.js 3.4.9 then leaves that connection object broken (porsager/postgres#1208 and the dying
 *   session's error handed to the next query): the worker replaces its pool (worker/lifecycle/database.ts).
 * - gone silent without closing (a network partition): the statement never answers, and the run would hold
 *   the worker forever; it is abandoned once nothing has moved for a lease and a request timeout. An idle
 *   worker's probe on such a connection would wait forever too: it gives up after 10 s.
 *
 * Either way the batch's rows are given back by PostgreSQL, are delivered again (same uuid), and the worker
 * goes on delivering promptly on every connection of its pool.
 */
import { expect, it } from 'vitest';
import type { CaptureServer } from '../../dev/capture-server.ts';
import { attributedEvent, record } from '../../src/index.ts';
import type { Logger } from '../../worker/index.ts';
import type { TestDatabase } from '../support/db.ts';
import { SOAK } from '../support/soak.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';
import { heldRows, inProcessWorkers, until, outboxEmpty } from '../support/worker.ts';

let db: TestDatabase;
let capture: CaptureServer;

const start = inProcessWorkers('phc_loss', (fixture) => ({ db, capture } = fixture), {
  concurrency: 1,
  backoff: { baseMs: 50, maxMs: 200 },
});

const posthog = (requestTimeoutMs: number) => ({ apiKey: 'phc_loss', host: capture.url, requestTimeoutMs });
const one = (i: number) =>
  db.sql.begin((tx) => record(tx, [attributedEvent({ organization: { id: 'org_1' }, user: { id: `user_${i}` } }, 'after_loss', { i })]));

function recordingLogger(): Logger & { errors: string[]; warnings: string[] } {
  const errors: string[] = [];
  const warnings: string[] = [];
  /** The message, and the reason when the worker gives it as a field. */
  const line = (o: object, message?: string) => [message ?? '', (o as { reason?: string }).reason].filter(Boolean).join(': ');
  return { errors, warnings, info() {}, warn: (o, message) => warnings.push(line(o, message)), error: (o, message) => errors.push(line(o, message)) };
}

/** Runs `test` with a TCP proxy in front of the test database (test/support/tcp-proxy.ts) and its URL. */
async function throughProxy(test: (proxy: TcpProxy, databaseUrl: string) => Promise<void>): Promise<void> {
  const proxy = await startTcpProxy(Number(new URL(db.url).port));
  try {
    const url = new URL(db.url);
    url.port = String(proxy.port);
    await test(proxy, url.toString());
  } finally {
    await proxy.close();
  }
}

/** Cuts off the connections whose startup message names `applicationName` (new ones included) for 2 s. */
function cutOffFor2s(proxy: TcpProxy, applicationName: string): void {
  proxy.partition(`${applicationName}\0`);
  setTimeout(() => proxy.heal(), 2_000);
}

/** Waits until the worker has a connection named `applicationName` open on the test database. */
const connected = (applicationName: string) =>
  until(
    () => db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = ${applicationName}`,
    ([row]) => row!.n > 0,
    { what: `a connection of ${applicationName}` },
  );

/** One event at a time, each delivered within a few seconds, while /metrics is scraped (three queries at once). */
async function deliversPromptly(healthUrl: string, from: number): Promise<void> {
  for (let i = from; i < from + 10; i++) {
    const startedAt = Date.now();
    const [uuid] = await one(i);
    const scrapes = Promise.all([1, 2, 3].map(() => fetch(`${healthUrl}/metrics`, { signal: AbortSignal.timeout(5_000) }).then((r) => r.status)));
    await until(() => capture.events.some((e) => e.uuid === uuid), Boolean, { what: `event ${i} to arrive`, timeoutMs: 5_000 });
    expect(await scrapes).toEqual([200, 200, 200]);
    expect(Date.now() - startedAt).toBeLessThan(5_000);
  }
}

it('the connection is closed while the batch settles: the pool is replaced, every later query works', async () => {
  const logger = recordingLogger();
  const worker = await start({ metrics: { port: 0, host: '127.0.0.1' }, logger, posthog: posthog(5_000), leaseMs: 30_000 });
  // The batch's settle statement (delete the delivered rows, remember the profiles) waits on a lock this test
  // holds; its connection is ended while it waits, so the statement fails under postgres.js's transaction.
  const blocker = await db.sql.reserve();
  await blocker`BEGIN`;
  await blocker`LOCK TABLE posthog_outbox.identities IN EXCLUSIVE MODE`;
  const [lost] = await one(0);
  const [waiting] = await until(
    () => db.sql<{ pid: number }[]>`
      SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'posthog-outbox worker' AND wait_event_type = 'Lock'`,
    (rows) => rows.length === 1,
    { what: "the worker's settle statement to wait on the lock" },
  );
  await db.sql`SELECT pg_terminate_backend(${waiting!.pid})`;
  await blocker`COMMIT`;
  blocker.release();
  // its transaction is gone, the row with it unsettled: the worker remembers PostHog accepted it, and settles
  // it unsent when it claims it again (PostHog sees its uuid once)
  await outboxEmpty(db.sql, { what: 'the lost batch to be settled', timeoutMs: 15_000 });
  expect(capture.events.filter((e) => e.uuid === lost)).toHaveLength(1);
  expect(logger.errors.filter((m) => /connection was lost/.test(m))).toHaveLength(1);
  // A broken connection object left in the pool would fail a scrape with the dead session's error, or hand
  // a query a connection that waits out the connect timeout (10 s).
  await deliversPromptly(worker.healthUrl!, 1);
}, 120_000);

it('the connection goes silent while a batch is out (network partition): the run is abandoned, its rows settled after the lease, not sent again', async () => {
  await throughProxy(async (proxy, databaseUrl) => {
    const logger = recordingLogger();
    // stall bound: lease (3 s) + request timeout (1 s)
    const worker = await start({ databaseUrl, metrics: { port: 0, host: '127.0.0.1' }, logger, posthog: posthog(1_000), leaseMs: 3_000 });
    capture.delayNext(1, 500);
    const [lost] = await one(0);
    await until(
      () => heldRows(db.sql),
      (n) => n === 1,
      { what: 'the worker to claim the row' },
    );
    const [held] = await until(
      () => db.sql<{ port: number }[]>`
        SELECT client_port AS port FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'posthog-outbox worker' AND state = 'idle in transaction'`,
      (rows) => rows.length === 1,
      { what: 'the worker to hold the batch while its request is out' },
    );
    expect(proxy.silence(held!.port)).toBe(true);
    // the settle statement goes nowhere; PostgreSQL ends the idle transaction after the lease
    // PostHog accepted it: settled unsent once the worker claims it again, not delivered twice
    await outboxEmpty(db.sql, { what: 'the silenced batch to be settled', timeoutMs: 20_000 });
    expect(capture.events.filter((e) => e.uuid === lost)).toHaveLength(1);
    expect(logger.errors.filter((m) => /stopped answering/.test(m))).toHaveLength(1);
    await deliversPromptly(worker.healthUrl!, 1);
  });
}, 120_000);

it('an idle worker is cut off from the database for 2 s: the probe gives up, the pool is replaced, the next event arrives', async () => {
  await throughProxy(async (proxy, databaseUrl) => {
    const logger = recordingLogger();
    // a run on a silent connection is given up after lease + request timeout (31 s): longer than this test waits
    await start({ databaseUrl, logger, posthog: posthog(1_000), leaseMs: 30_000 });
    await connected('posthog-outbox worker'); // the worker's connections are open, and it probes on them
    // its own connections, not pg-boss's ('posthog-outbox worker (pg-boss)')
    cutOffFor2s(proxy, 'posthog-outbox worker');
    const startedAt = Date.now();
    const [uuid] = await one(0);
    // the probe's bound (10 s), then a fresh pool; the safety-net run (once a minute) is not what delivers it
    await until(() => capture.events.some((e) => e.uuid === uuid), Boolean, { what: 'the event to arrive', timeoutMs: 30_000 });
    expect(logger.warnings.filter((m) => /idle probe got no answer/.test(m)).length).toBeGreaterThan(0);
    expect(Date.now() - startedAt).toBeLessThan(30_000);
  });
}, 120_000);

it("pg-boss's connections are closed by the server: it reconnects, the drain job is queued and run, the event arrives", async () => {
  const logger = recordingLogger();
  await start({ logger, posthog: posthog(1_000), leaseMs: 30_000 });
  await connected('posthog-outbox worker (pg-boss)');
  const closed = await db.sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
    WHERE datname = current_database() AND application_name = 'posthog-outbox worker (pg-boss)'`;
  expect(closed.length).toBeGreaterThan(0);
  const [uuid] = await one(0);
  // well before the once-a-minute safety net: the kick's job, sent on a fresh connection, runs
  await until(() => capture.events.some((e) => e.uuid === uuid), Boolean, { what: 'the event to arrive', timeoutMs: 20_000 });
});

// pg-boss's statements on a silent connection give up after its 30 s bound (worker/lifecycle/lifecycle.ts
// PGBOSS_STATEMENT_MS): the soak run has the time; `npm test` has the closed connections above.
it.runIf(SOAK)(
  "pg-boss's connections are cut off for 2 s: its statements give up, the drain job is queued and run, the event arrives",
  async () => {
    await throughProxy(async (proxy, databaseUrl) => {
      const logger = recordingLogger();
      await start({ databaseUrl, logger, posthog: posthog(1_000), leaseMs: 30_000 });
      await connected('posthog-outbox worker (pg-boss)');
      cutOffFor2s(proxy, 'posthog-outbox worker (pg-boss)');
      const [uuid] = await one(0);
      // pg-boss's statements on the silenced connections give up after its bound (30 s); the job it queues
      // (and the once-a-minute safety net) then run on fresh connections
      await until(() => capture.events.some((e) => e.uuid === uuid), Boolean, { what: 'the event to arrive', timeoutMs: 75_000 });
    });
  },
  120_000,
);
