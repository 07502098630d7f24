/**
 * The least-privilege grants documented in docs/hosted-postgres.md (the ```sql grants block, run verbatim with unique
 * role names): the writer role can record events and nothing else; a worker connected as the worker role
 * drains them to PostHog.
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startCaptureServer, type CaptureServer } from '../../dev/capture-server.ts';
import { attributedEvent, record } from '../../src/index.ts';
import { startWorker } from '../../worker/index.ts';
import { dropWithRoles, type TestDatabase } from '../support/db.ts';
import { docBlock } from '../support/docs.ts';
import { createWorkerDatabase, outboxCount, until, outboxEmpty } from '../support/worker.ts';

const suffix = randomBytes(4).toString('hex');
const writer = `posthog_outbox_writer_${suffix}`;
const workerRole = `posthog_outbox_worker_${suffix}`;

function grantsFromDocs(): string {
  return docBlock('docs/hosted-postgres.md', 'sql grants').replaceAll('posthog_outbox_writer', writer).replaceAll('posthog_outbox_worker', workerRole);
}

function as(db: TestDatabase, role: string): string {
  const url = new URL(db.url);
  url.username = role;
  url.password = 'change-me';
  return url.toString();
}

let db: TestDatabase;
let capture: CaptureServer;
let writerSql: postgres.Sql;
beforeAll(async () => {
  db = await createWorkerDatabase();
  capture = await startCaptureServer({ apiKey: 'phc_grants' });
  await db.sql.unsafe(grantsFromDocs());
  writerSql = postgres(as(db, writer), { max: 1, onnotice: () => {} });
});
afterAll(async () => {
  await writerSql?.end();
  await capture?.close();
  if (db) await dropWithRoles(db, [writer, workerRole]);
});

const context = { organization: { id: 'org_1', name: 'Acme' }, user: { id: 'user_1', email: 'a@example.com' } };

it('the writer role records in its transaction, and can neither read nor delete the outbox', async () => {
  const [uuid] = await writerSql.begin((tx) => record(tx, attributedEvent(context, 'chat_started')));
  expect(uuid).toBeTruthy();
  await expect(writerSql`SELECT * FROM posthog_outbox.outbox`).rejects.toThrow(/permission denied/);
  await expect(writerSql`DELETE FROM posthog_outbox.outbox`).rejects.toThrow(/permission denied/);
  await expect(writerSql`SELECT * FROM posthog_outbox.dead_letters`).rejects.toThrow(/permission denied/);
  expect(await outboxCount(db.sql)).toBe(1);
});

it('the writer role records from SQL with posthog_outbox.record(jsonb) (docs/sql.md), in its transaction', async () => {
  const [row] = await writerSql.begin(
    (tx) => tx`SELECT posthog_outbox.record(${tx.json({ event: 'sql_recorded', distinctId: 'user_1', groups: { organization: 'org_1' } })}) AS uuid`,
  );
  expect(row!.uuid).toBeTruthy();
  await expect(
    writerSql.begin(async (tx) => {
      await tx`SELECT posthog_outbox.record(${tx.json({ event: 'rolled_back', distinctId: 'user_1' })})`;
      throw new Error('rolled back');
    }),
  ).rejects.toThrow('rolled back');
  const events = await db.sql<{ event: string }[]>`SELECT event FROM posthog_outbox.outbox WHERE event IN ('sql_recorded', 'rolled_back')`;
  expect(events.map((e) => e.event)).toEqual(['sql_recorded']);
  await db.sql`DELETE FROM posthog_outbox.outbox WHERE event = 'sql_recorded'`;
});

it('a worker connected as the worker role drains the outbox and re-identifies', async () => {
  await writerSql.begin((tx) => record(tx, attributedEvent(context, 'automation_created')));
  const worker = await startWorker({ databaseUrl: as(db, workerRole), posthog: { apiKey: 'phc_grants', host: capture.url } });
  try {
    await outboxEmpty(db.sql, { what: 'the outbox to drain' });
    await capture.waitFor(4, { timeoutMs: 10_000 }); // 2 events, $identify, $groupidentify
  } finally {
    await worker.stop(5_000);
  }
  expect(capture.events.map((e) => e.event).sort()).toEqual(['$groupidentify', '$identify', 'automation_created', 'chat_started']);
  const [health] = await db.sql<{ failing_since: Date | null }[]>`SELECT failing_since FROM posthog_outbox.target_health`;
  expect(health).toEqual({ failing_since: null });
});

it('a worker connected as the worker role records a failing target (for `status`)', async () => {
  capture.failFor(60_000, 503);
  await writerSql.begin((tx) => record(tx, attributedEvent(context, 'chat_started')));
  const worker = await startWorker({
    databaseUrl: as(db, workerRole),
    posthog: { apiKey: 'phc_grants', host: capture.url },
    backoff: { baseMs: 50, maxMs: 100 },
  });
  try {
    const health = await until(
      () => db.sql<{ failing_since: Date | null; reason: string | null }[]>`SELECT failing_since, reason FROM posthog_outbox.target_health`,
      (rows) => rows[0]?.failing_since != null,
      { what: 'the failure to be recorded' },
    );
    expect(health[0]!.reason).toMatch(/HTTP 503/);
  } finally {
    await worker.stop(5_000);
    capture.reset();
  }
});

it('a worker connected as the worker role deletes dead letters past their retention, and only those', async () => {
  const dead = (
    uuid: string,
    days: number,
  ) => db.sql`INSERT INTO posthog_outbox.dead_letters (uuid, event, distinct_id, properties, groups, timestamp, user_profile, reason, died_at)
    VALUES (${uuid}, 'old', 'user_1', '{}', '{}', now(), '{"email":"a@example.com"}', 'test', now() - make_interval(days => ${days}))`;
  await dead('00000000-0000-7000-8000-000000000031', 31);
  await dead('00000000-0000-7000-8000-000000000029', 29);
  const worker = await startWorker({ databaseUrl: as(db, workerRole), posthog: { apiKey: 'phc_grants', host: capture.url } });
  try {
    await until(
      () => db.sql`SELECT uuid FROM posthog_outbox.dead_letters ORDER BY uuid`.then((r) => r.map((x) => x.uuid)),
      (u) => u.length === 1,
      { what: 'the expired dead letter to go' },
    );
    expect((await db.sql`SELECT uuid FROM posthog_outbox.dead_letters`).map((r) => r.uuid)).toEqual(['00000000-0000-7000-8000-000000000029']);
  } finally {
    await worker.stop(5_000);
  }
});
