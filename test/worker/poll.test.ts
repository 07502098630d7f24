/**
 * Waking the worker without NOTIFY: handlers' commits send none (PostgreSQL serialises the commits of
 * transactions that notify), an idle worker finds new events with a cheap probe, and idling costs a few
 * queries a second (`npm test` measures 5 s of it, `npm run soak` 20 s).
 */
import type postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startCaptureServer, type CaptureServer } from '../../dev/capture-server.ts';
import { attributedEvent, record } from '../../src/index.ts';
import { startWorker, type OutboxWorker } from '../../worker/index.ts';
import type { TestDatabase } from '../support/db.ts';
import { SOAK } from '../support/soak.ts';
import { createWorkerDatabase, until, outboxEmpty } from '../support/worker.ts';

let db: TestDatabase;
let capture: CaptureServer;
let worker: OutboxWorker;

beforeAll(async () => {
  db = await createWorkerDatabase();
  capture = await startCaptureServer({ apiKey: 'phc_poll' });
  worker = await startWorker({ databaseUrl: db.url, posthog: { apiKey: 'phc_poll', host: capture.url } });
});
afterAll(async () => {
  await worker?.stop(5_000);
  await capture?.close();
  await db?.drop();
});

const context = { organization: { id: 'org_p', name: 'P' }, user: { id: 'user_p', email: 'p@example.com' } };

it('a handler transaction sends no NOTIFY, and an event committed while the worker idles is still delivered', async () => {
  const notifying = await db.sql`SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'posthog_outbox' AND c.relname = 'outbox' AND NOT t.tgisinternal`;
  expect(notifying).toEqual([]);
  await new Promise((r) => setTimeout(r, 1_500)); // idle: the probe is at its slowest
  const [uuid] = await db.sql.begin((tx) => record(tx, attributedEvent(context, 'chat_started')));
  await capture.waitFor((events) => events.some((e) => e.uuid === uuid), { timeoutMs: 10_000 });
  await outboxEmpty(db.sql, { what: 'the outbox to drain' });
});

/** Calls so far of the statements on `sql`'s database whose text matches (or with `not`, does not match) `like`. */
async function statementCalls(sql: postgres.Sql, like: string, not = false): Promise<number> {
  const [row] = await sql<{ n: string }[]>`SELECT COALESCE(sum(calls), 0)::text AS n FROM pg_stat_statements
    WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND query ${not ? sql`NOT LIKE` : sql`LIKE`} ${like}`;
  return Number(row!.n);
}

/**
 * Statements run so far on this test's database (BEGIN and COMMIT included), but reads of the counters
 * themselves: from pg_stat_statements, which counts each statement as it ends, when the server loads it (the
 * test server does); otherwise committed transactions from pg_stat_database, which a busy server may report
 * late (the bound is then looser, to absorb a burst of held-back counts).
 */
async function statementsSoFar(sql: postgres.Sql): Promise<{ count: number; limit: number; ownReads: number }> {
  try {
    await sql`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`;
    const count = await statementCalls(sql, '%pg_stat_statements%', true);
    return { count, limit: 5, ownReads: 0 }; // its reads are left out by the query
  } catch {
    // a server that does not load it (installed or not): count transactions instead
  }
  const [row] = await sql<{ n: number }[]>`SELECT xact_commit::int AS n FROM pg_stat_database WHERE datname = current_database()`;
  return { count: row!.n, limit: 8, ownReads: 2 }; // this test's own reads, counted too
}

/** Statements a second on `sql`'s database while nothing is recorded, over `seconds`, once idle. */
async function idleRate(sql: postgres.Sql, seconds: number): Promise<{ perSecond: number; limit: number }> {
  await new Promise((r) => setTimeout(r, 1_500)); // the scenario: idle, so the probe has eased to its slowest
  const before = await statementsSoFar(sql);
  await new Promise((r) => setTimeout(r, seconds * 1000)); // the scenario: the window measured
  const after = await statementsSoFar(sql);
  return { perSecond: (after.count - before.count - after.ownReads) / seconds, limit: after.limit };
}

it('an idle worker costs a few cheap queries a second (a 5 s window, the minutely safety-net run out of it)', async () => {
  const idle = await createWorkerDatabase();
  const own = await startWorker({
    databaseUrl: idle.url,
    posthog: { apiKey: 'phc_poll', host: capture.url },
    safetyNetCron: '0 0 1 1 *', // its ~10 statements once a minute would dominate a short window
  });
  try {
    const { perSecond, limit } = await idleRate(idle.sql, 5);
    // the worker's probes (2 a second once idle), pg-boss's job polling and maintenance (about 1 a second)
    console.log(`idle worker, 5 s: ${perSecond.toFixed(1)} statements/s on its database`);
    expect(perSecond).toBeLessThanOrEqual(limit);
  } finally {
    await own.stop(5_000);
    await idle.drop();
  }
});

it.runIf(SOAK)(
  'an idle worker costs a few cheap queries a second, over 20 s with the minutely safety-net run',
  async () => {
    // long enough that a once-a-minute burst (the safety-net run: ~10 statements) does not dominate
    const { perSecond, limit } = await idleRate(db.sql, 20);
    // the worker's probes (2 a second once idle), pg-boss's job polling and maintenance (about 1 a second), and
    // the minutely safety-net run if it falls in the window: 3.5 a second over 20 s in runs on 2 cores
    console.log(`idle worker, 20 s: ${perSecond.toFixed(1)} statements/s on its database`);
    expect(perSecond).toBeLessThanOrEqual(limit);
  },
  60_000,
);

it('a starting worker finds out with the probe whether anything is due: with only rows held for later, it runs no claim', async () => {
  const held = await createWorkerDatabase();
  try {
    await held.sql.unsafe(`INSERT INTO posthog_outbox.outbox (uuid, event, distinct_id, properties, groups, "timestamp", next_attempt_at)
      SELECT uuidv7(), 'held', 'user_1', '{}', '{}', now(), now() + interval '1 day' FROM generate_series(1, 1000)`);
    await held.sql`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`;
    const calls = (like: string) => statementCalls(held.sql, like);
    const started = await startWorker({
      databaseUrl: held.url,
      posthog: { apiKey: 'phc_poll', host: capture.url },
      safetyNetCron: '0 0 1 1 *', // out of the way: the minutely safety-net run claims without asking the probe
    });
    try {
      await until(
        () => calls('%LEAST%'),
        (n) => n >= 3,
        { what: 'the idle probe to look a few times' },
      );
      // a claim would walk past every held row (they are never tried, so in uuid order) to find none due
      expect(await calls('%AS "expired"%')).toBe(0); // the claim's statement (worker/claim/claim.sql.ts claimBatch)
    } finally {
      await started.stop(5_000);
    }
    expect((await held.sql`SELECT count(*)::int AS n FROM posthog_outbox.outbox`)[0]!.n).toBe(1000);
  } finally {
    await held.drop();
  }
});
