/**
 * Waking the worker without NOTIFY: handlers' commits send none (PostgreSQL serialises the commits of
 * transactions that notify), an idle worker finds new events with a cheap probe, and idling costs a few
 * queries a second.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startCaptureServer, type CaptureServer } from '../../dev/capture-server.ts';
import { attributedEvent, record } from '../../src/index.ts';
import { startWorker, type OutboxWorker } from '../../worker/index.ts';
import type { TestDatabase } from '../support/db.ts';
import { createWorkerDatabase, outboxCount, until } from '../support/worker.ts';

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
  await until(
    () => outboxCount(db.sql),
    (n) => n === 0,
    { what: 'the outbox to drain' },
  );
});

it('an idle worker costs a few cheap queries a second', async () => {
  await new Promise((r) => setTimeout(r, 1_500));
  const commits = async () => (await db.sql<{ n: number }[]>`SELECT xact_commit::int AS n FROM pg_stat_database WHERE datname = current_database()`)[0]!.n;
  // pg_stat_database is updated when a backend reports its statistics (about once a second at most)
  const before = await commits();
  // long enough that a once-a-minute burst (the safety-net run, pg-boss's supervision) does not dominate
  const seconds = 12;
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const after = await commits();
  // every transaction on this database in the window: the worker's probes (2 a second once idle), pg-boss's
  // job polling and maintenance (about 3 a second, measured with the probe disabled), and this test's reads
  const perSecond = (after - before - 2) / seconds;
  console.log(`idle worker: ${perSecond.toFixed(1)} transactions/s on its database`);
  expect(perSecond).toBeLessThanOrEqual(8);
});
