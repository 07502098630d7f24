/**
 * What one worker costs and shows a hosted database: the PostgreSQL connections it holds with default
 * settings while draining and being scraped (counted in pg_stat_activity by application_name), and a
 * `/healthz` that says which dependency is down without echoing the database's error text.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startCaptureServer, type CaptureServer } from '../../dev/capture-server.ts';
import { record } from '../../src/record/record.ts';
import { startWorker } from '../../worker/index.ts';
import { dropWithRoles, type TestDatabase } from '../support/db.ts';
import { createWorkerDatabase, outboxCount, until } from '../support/worker.ts';

let db: TestDatabase;
let capture: CaptureServer;
const role = `posthog_outbox_health_${randomBytes(4).toString('hex')}`;

beforeAll(async () => {
  db = await createWorkerDatabase();
  capture = await startCaptureServer({ apiKey: 'phc_exposure' });
  await db.sql.unsafe(`CREATE ROLE ${role} LOGIN SUPERUSER PASSWORD 'change-me'`);
});
afterAll(async () => {
  await capture?.close();
  if (db) await dropWithRoles(db, [role]);
});

/** The worker's connections now, by application_name. */
async function connections(): Promise<Record<string, number>> {
  const rows = await db.sql<{ app: string; n: number }[]>`
    SELECT application_name AS app, count(*)::int AS n FROM pg_stat_activity
    WHERE datname = ${db.name} AND application_name LIKE 'posthog-outbox worker%' GROUP BY 1`;
  return Object.fromEntries(rows.map((r) => [r.app, r.n]));
}

it('one worker with default settings holds at most 8 connections: concurrency + 2 of its own, 3 + 1 (LISTEN) of pg-boss', async () => {
  const event = (i: number) => ({ event: 'tool_called', distinctId: `user_${i % 50}`, properties: { i }, groups: {}, profiles: {} });
  await record(
    db.sql,
    Array.from({ length: 20_000 }, (_, i) => event(i)),
  );
  capture.delayNext(20, 50); // every request takes a while: both lanes are busy at once
  const worker = await startWorker({ databaseUrl: db.url, posthog: { apiKey: 'phc_exposure', host: capture.url }, metrics: { port: 0, host: '127.0.0.1' } });
  const peak: Record<string, number> = {};
  let peakTotal = 0;
  try {
    const sample = async () => {
      const now = await connections();
      for (const [app, n] of Object.entries(now)) peak[app] = Math.max(peak[app] ?? 0, n);
      peakTotal = Math.max(
        peakTotal,
        Object.values(now).reduce((a, b) => a + b, 0),
      );
    };
    // Drain 20 batches while /metrics and /healthz are scraped, sampling the connections all along.
    while ((await outboxCount(db.sql)) > 0) {
      await Promise.all([sample(), fetch(`${worker.healthUrl}/metrics`).then((r) => r.text()), fetch(`${worker.healthUrl}/healthz`).then((r) => r.text())]);
    }
    await sample();
  } finally {
    await worker.stop(5_000);
  }
  console.log(`connections of one worker with default settings, peak: ${JSON.stringify(peak)}, total ${peakTotal}`);
  expect(peak['posthog-outbox worker']).toBeLessThanOrEqual(4); // --concurrency (2) + 2: the lanes, the idle probe, scrapes
  expect(peak['posthog-outbox worker']).toBeGreaterThanOrEqual(3);
  expect(peak['posthog-outbox worker (pg-boss)']).toBeLessThanOrEqual(4); // its pool (max 3) + its LISTEN connection
  expect(peak['posthog-outbox worker (pg-boss)']).toBeGreaterThanOrEqual(2);
  expect(peakTotal).toBeLessThanOrEqual(8);
  await until(connections, (c) => Object.keys(c).length === 0, { what: "the stopped worker's connections to close" });
}, 120_000);

it('/healthz says the database is down without echoing its error text (which names the role)', async () => {
  const url = new URL(db.url);
  url.username = role;
  url.password = 'change-me';
  const worker = await startWorker({
    databaseUrl: url.toString(),
    posthog: { apiKey: 'phc_exposure', host: capture.url },
    metrics: { port: 0, host: '127.0.0.1' },
  });
  try {
    expect((await fetch(`${worker.healthUrl}/healthz`)).status).toBe(200);
    // The role may no longer log in, and its sessions end: every reconnect fails with a message naming it.
    await db.sql.unsafe(`ALTER ROLE ${role} NOLOGIN`);
    await db.sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ${role}`;
    const res = await until(
      () => fetch(`${worker.healthUrl}/healthz`),
      (r) => r.status === 503,
      { what: '/healthz to say unavailable' },
    );
    const body = await res.text();
    expect(JSON.parse(body)).toMatchObject({ status: 'unavailable', checks: { database: expect.stringMatching(/^(down|timeout)$/) } });
    expect(body).not.toContain(role);
    expect(body).not.toMatch(/not permitted|log in|password|127\.0\.0\.1/);
    const metrics = await fetch(`${worker.healthUrl}/metrics`);
    const text = await metrics.text();
    if (metrics.status !== 200) expect(text).not.toContain(role);
  } finally {
    await db.sql.unsafe(`ALTER ROLE ${role} LOGIN`);
    await worker.stop(5_000);
  }
}, 60_000);
