/** `/metrics` and `/healthz` of a running worker: the numbers match what happened and what the tables hold. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startCaptureServer, type CaptureServer } from '../../dev/capture-server.ts';
import { attributedEvent, record } from '../../src/index.ts';
import { startWorker, type OutboxWorker } from '../../worker/index.ts';
import type { TestDatabase } from '../support/db.ts';
import { createWorkerDatabase, until, outboxEmpty } from '../support/worker.ts';

let db: TestDatabase;
let capture: CaptureServer;
let worker: OutboxWorker;

beforeAll(async () => {
  db = await createWorkerDatabase();
  capture = await startCaptureServer({ apiKey: 'phc_metrics' });
  worker = await startWorker({
    databaseUrl: db.url,
    posthog: { apiKey: 'phc_metrics', host: capture.url },
    batchSize: 50,
    backoff: { baseMs: 50, maxMs: 200 },
    metrics: { port: 0, host: '127.0.0.1' },
  });
});
afterAll(async () => {
  await worker?.stop(5_000);
  await capture?.close();
  await db?.drop();
});

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  if (!line) throw new Error(`no ${name} in\n${text}`);
  return Number(line.split(' ').at(-1));
}

it('serves /healthz as ready while the database, the outbox table and pg-boss answer and drain passes succeed', async () => {
  const res = await fetch(`${worker.healthUrl}/healthz`);
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ status: 'ok', checks: { database: 'ok', outbox: 'ok', pgboss: 'ok', drain: 'ok' } });
  expect((await fetch(`${worker.healthUrl}/nope`)).status).toBe(404);
});

it('counts deliveries, dead letters, identify events and request latencies; reads the backlog from the table', async () => {
  const context = { organization: { id: 'org_m', name: 'M' }, user: { id: 'user_m', email: 'm@example.com' } };
  capture.rejectEventsWhere((e) => e.event === 'poison');
  await record(db.sql, [...Array.from({ length: 120 }, (_, i) => attributedEvent(context, 'good', { i })), attributedEvent(context, 'poison')]);
  await outboxEmpty(db.sql, { what: 'the outbox to drain' });
  await capture.waitFor(122, { timeoutMs: 10_000 }); // 120 events + $identify + $groupidentify

  // a backlog the worker cannot touch yet: due in an hour
  // (in one transaction: committed due now, the worker would deliver it at once)
  await db.sql.begin(async (tx) => {
    await record(tx, [attributedEvent(context, 'later')]);
    await tx`UPDATE posthog_outbox.outbox SET next_attempt_at = now() + interval '1 hour', created_at = now() - interval '90 seconds'`;
  });

  const text = await (await fetch(`${worker.healthUrl}/metrics`)).text();
  expect(metric(text, 'posthog_outbox_delivered_total')).toBe(122);
  expect(metric(text, 'posthog_outbox_dead_lettered_total')).toBe(1);
  expect(metric(text, 'posthog_outbox_identify_events_total')).toBe(2);
  expect(metric(text, 'posthog_outbox_backlog')).toBe(1);
  expect(metric(text, 'posthog_outbox_oldest_event_age_seconds')).toBeGreaterThanOrEqual(90);
  expect(metric(text, 'posthog_outbox_dead_letters')).toBe(1);
  // every request observed: 3 full batches... whatever the split, the histogram counts each request once
  const accepted = metric(text, 'posthog_outbox_batch_request_seconds_count{outcome="accepted"}');
  const rejected = metric(text, 'posthog_outbox_batch_request_seconds_count{outcome="400"}');
  expect(accepted + rejected).toBe(capture.requests.length);
  expect(rejected).toBeGreaterThan(0);
  expect(text).not.toContain('m@example.com');
});

it('says when the target is failing (and since when), counts systemic rejections, and clears once PostHog accepts', async () => {
  const context = { organization: { id: 'org_m', name: 'M' }, user: { id: 'user_m', email: 'm@example.com' } };
  await db.sql`TRUNCATE posthog_outbox.outbox`;
  const before = Date.now() / 1000;
  capture.reset();
  capture.rejectEventsWhere(() => true, { status: 400 });
  await record(
    db.sql,
    Array.from({ length: 40 }, (_, i) => attributedEvent(context, 'refused', { i })),
  );
  const scrape = async () => (await fetch(`${worker.healthUrl}/metrics`)).text();
  const failing = await until(
    scrape,
    (text) => metric(text, 'posthog_outbox_target_failing') === 1 && metric(text, 'posthog_outbox_rejected_broadly_total') >= 1,
    {
      what: 'the metrics to show a failing target',
    },
  );
  expect(metric(failing, 'posthog_outbox_target_failing_since_seconds')).toBeGreaterThanOrEqual(Math.floor(before));
  expect(metric(failing, 'posthog_outbox_dead_lettered_total')).toBe(1); // the poison event of the test before, none since
  capture.clearFaults();
  const working = await until(scrape, (text) => metric(text, 'posthog_outbox_target_failing') === 0, { what: 'the target to recover' });
  expect(metric(working, 'posthog_outbox_target_failing_since_seconds')).toBe(0);
  await outboxEmpty(db.sql, { what: 'the outbox to drain' });
});
