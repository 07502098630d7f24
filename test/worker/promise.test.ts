/**
 * The delivery promise: a committed event is never dropped, dead-lettered or deleted unless PostHog took it.
 * Real PostgreSQL, real posthog-node, the project's capture server and hosts that are not PostHog: long
 * outages, redirects, web pages, wrong paths, systemic rejection, and poison events that must still be
 * isolated. Backoff is shortened so that many attempts fit in a test.
 */
import { describe, expect, it } from 'vitest';
import { startCaptureServer, type CaptureServer } from '../../dev/capture-server.ts';
import type { OutboxEvent } from '../../src/record/event.ts';
import { record } from '../../src/record/record.ts';
import { DEFAULT_BACKOFF } from '../../worker/settle/backoff.ts';
import { bisectionBudget } from '../../worker/send/outcome.ts';
import type { OutboxWorker } from '../../worker/index.ts';
import type { TestDatabase } from '../support/db.ts';
import { notPostHogHosts, type Reply } from '../support/hosts.ts';
import { deadLetterRows, inProcessWorkers, outboxCount, until, outboxEmpty } from '../support/worker.ts';

let db: TestDatabase;
let capture: CaptureServer;
let worker: OutboxWorker | undefined;

/** A 1/100 scale of the default policy (1 s doubling to 60 s): 10 ms doubling to 600 ms. */
const SCALED = { baseMs: DEFAULT_BACKOFF.baseMs / 100, maxMs: DEFAULT_BACKOFF.maxMs / 100 };

/** A 1/1000 scale (1 ms doubling to 60 ms), for the tests that count many attempts: their number is the point, not the waits. */
const QUICK = { baseMs: DEFAULT_BACKOFF.baseMs / 1000, maxMs: DEFAULT_BACKOFF.maxMs / 1000 };

const start = inProcessWorkers('phc_promise', (fixture) => ({ db, capture } = fixture), { backoff: SCALED, batchSize: 100, requestTimeoutMs: 2_000 });

function event(i: number, overrides: Partial<OutboxEvent> = {}): OutboxEvent {
  return { event: 'tool_called', distinctId: `user_${i % 3}`, properties: { i }, groups: {}, profiles: {}, ...overrides };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const settled = (what = 'the outbox to empty', timeoutMs = 20_000) => outboxEmpty(db.sql, { what, timeoutMs });

async function health() {
  const [row] = await db.sql<{ failing_since: Date | null; reason: string | null }[]>`SELECT failing_since, reason FROM posthog_outbox.target_health`;
  return row;
}

async function attempts() {
  return db.sql<{ attempts: number }[]>`SELECT attempts FROM posthog_outbox.outbox`.then((rows) => rows.map((r) => r.attempts));
}

const host = notPostHogHosts();

/** Runs a worker against `posthogHost` with 20 events waiting until a row was tried 10 times; every row must still be queued after. */
async function pointedAt(posthogHost: string) {
  const uuids = await record(
    db.sql,
    Array.from({ length: 20 }, (_, i) => event(i)),
  );
  worker = await start({ posthog: { apiKey: 'phc_promise', host: posthogHost, requestTimeoutMs: 2_000 }, backoff: QUICK });
  await until(attempts, (a) => Math.max(...a) >= 10, { what: 'a row tried 10 times at the wrong host', timeoutMs: 20_000 });
  expect(await outboxCount(db.sql)).toBe(20);
  expect(await deadLetterRows(db.sql)).toEqual([]);
  expect(worker.totals.delivered).toBe(0);
  expect(worker.target.failingSince).not.toBeNull();
  const stored = await health();
  expect(stored?.failing_since).not.toBeNull();
  return { uuids, reason: stored!.reason! };
}

describe('target failures never dead-letter', () => {
  it('an outage as long, in attempts, as 30 minutes under the default policy: nothing dead-lettered, all delivered after recovery, target marked failing then working', async () => {
    // The default policy (1 s doubling to 60 s) makes 7 attempts in the first 64 s, then one a minute:
    // 30 minutes is 36 attempts. The old limit was 10.
    const thirtyMinutes = 7 + Math.ceil((30 * 60_000 - 64_000) / DEFAULT_BACKOFF.maxMs);
    capture.failFor(600_000, 503);
    const uuids = await record(
      db.sql,
      Array.from({ length: 50 }, (_, i) => event(i)),
    );
    worker = await start({ backoff: QUICK });
    await until(attempts, (a) => a.length === 50 && Math.min(...a) >= thirtyMinutes, { what: `${thirtyMinutes} attempts on every row`, timeoutMs: 60_000 });
    expect(await deadLetterRows(db.sql)).toEqual([]);
    expect((await health())?.reason).toMatch(/PostHog answered HTTP 503/);
    capture.clearFaults(); // PostHog is back
    await capture.waitFor(50, { timeoutMs: 15_000 });
    await settled();
    expect(new Set(capture.events.map((e) => e.uuid))).toEqual(new Set(uuids));
    expect(await deadLetterRows(db.sql)).toEqual([]);
    await until(health, (h) => h?.failing_since === null, { what: 'the target to be marked working' });
    expect(worker.target.failingSince).toBeNull();
  }, 120_000);

  it.each([401, 403, 404, 500, 408, 429])(
    'HTTP %i for many attempts: rows stay queued, then delivered',
    async (status) => {
      capture.failFor(600_000, status);
      const uuids = await record(
        db.sql,
        Array.from({ length: 5 }, (_, i) => event(i)),
      );
      worker = await start({ backoff: QUICK });
      await until(attempts, (a) => a.length === 5 && Math.min(...a) >= 11, { what: '11 attempts on every row (the old limit was 10)', timeoutMs: 30_000 });
      expect(await deadLetterRows(db.sql)).toEqual([]);
      capture.clearFaults();
      await capture.waitFor(5, { timeoutMs: 15_000 });
      await settled();
      expect(new Set(capture.events.map((e) => e.uuid))).toEqual(new Set(uuids));
    },
    60_000,
  );

  it('a host that redirects (and answers the redirected GET with 200): not followed, every row stays queued, the reason names the Location', async () => {
    const moved = await host(
      (method): Reply =>
        method === 'POST'
          ? { status: 301, headers: { Location: 'https://eu.i.posthog.example/batch/' } }
          : { status: 200, headers: { 'Content-Type': 'text/html' }, body: '<html>ok</html>' },
    );
    const { reason } = await pointedAt(moved.url);
    expect(reason).toMatch(/HTTP 301, a redirect to "https:\/\/eu\.i\.posthog\.example\/batch\/"/);
    expect(moved.methods.every((m) => m === 'POST')).toBe(true);
  }, 30_000);

  it('a host that answers 200 with a web page: every row stays queued, the reason says it does not look like PostHog', async () => {
    const page = await host(() => ({ status: 200, headers: { 'Content-Type': 'text/html' }, body: '<!doctype html><h1>It works!</h1>' }));
    const { reason } = await pointedAt(page.url);
    expect(reason).toMatch(/HTTP 200 \(text\/html\) without PostHog's capture answer.*does not look like PostHog's capture endpoint: check POSTHOG_HOST/);
  }, 30_000);

  it('a proxy that answers 200 {"ok":true} (JSON, but not PostHog): every row stays queued', async () => {
    const proxy = await host(() => ({ status: 200, headers: { 'Content-Type': 'application/json' }, body: '{"ok":true}' }));
    await pointedAt(proxy.url);
  }, 30_000);

  it('Capture V1 per-event results to a v0 worker (no mode chosen): not read as acceptance, kept, backed off, no re-send loop', async () => {
    // (a v0 request body is gzipped, and which uuids the results name does not matter: a v0 answer has no results)
    const results = { results: { '0190a000-0000-7000-8000-000000000001': { result: 'ok' } } };
    const v1 = await host(() => ({ status: 200, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(results) }));
    const { reason } = await pointedAt(v1.url);
    expect(reason).toMatch(/does not look like PostHog's capture endpoint/);
  }, 30_000);

  it('a wrong path on the capture server (404): every row stays queued, then delivered once the host is fixed', async () => {
    const { uuids, reason } = await pointedAt(`${capture.url}/not-posthog`);
    expect(reason).toMatch(/HTTP 404 \(check POSTHOG_HOST\)/);
    await worker!.stop(5_000);
    worker = await start();
    await capture.waitFor(20, { timeoutMs: 15_000 });
    await settled();
    expect(new Set(capture.events.map((e) => e.uuid))).toEqual(new Set(uuids));
  }, 30_000);

  it('PostHog’s current answer {"status":"Ok"} is acceptance', async () => {
    const current = await startCaptureServer({ apiKey: 'phc_promise', acceptance: 'Ok' });
    try {
      const uuids = await record(db.sql, [event(1), event(2)]);
      worker = await start({ posthog: { apiKey: 'phc_promise', host: current.url } });
      await current.waitFor(2, { timeoutMs: 10_000 });
      await settled();
      expect(new Set(current.events.map((e) => e.uuid))).toEqual(new Set(uuids));
    } finally {
      await current.close();
    }
  });
});

describe('systemic rejection: the circuit breaker', () => {
  it('every request rejected (400): nothing dead-lettered, requests bounded, status says so; all delivered once it stops', async () => {
    capture.rejectEventsWhere(() => true, { status: 400, message: 'failed to decode request: gzip: invalid header' });
    const uuids = await record(
      db.sql,
      Array.from({ length: 300 }, (_, i) => event(i)),
    );
    worker = await start({ batchSize: 100, concurrency: 2 });
    await until(
      () => worker!.totals.rejectedBroadly,
      (n) => n >= 3,
      { what: 'three batches judged broad', timeoutMs: 20_000 },
    );
    // and it goes on: two more broad judgements, still nothing dead-lettered
    await until(
      () => worker!.totals.rejectedBroadly,
      (n) => n >= 5,
      { what: 'five batches judged broad', timeoutMs: 20_000 },
    );
    expect(await deadLetterRows(db.sql)).toEqual([]);
    expect(await outboxCount(db.sql)).toBe(300);
    // Bisecting every event would cost ~600 requests per pass over the backlog; the breaker stops each batch
    // after log2(100)+3 = 10 refusals, and the worker pauses between runs.
    // (A lane whose batch is mid-bisection when another lane's turns broad stops too, after fewer refusals.)
    const refusals = capture.requests.filter((r) => r.status === 400).length;
    expect(refusals).toBeLessThanOrEqual(bisectionBudget(100) * (worker.totals.rejectedBroadly + 2));
    expect((await health())?.reason).toMatch(/PostHog rejects broadly: .*not dead-lettered.*failed to decode request/);
    capture.clearFaults();
    await capture.waitFor(300, { timeoutMs: 20_000 });
    await settled();
    expect(new Set(capture.events.map((e) => e.uuid))).toEqual(new Set(uuids));
    expect(await deadLetterRows(db.sql)).toEqual([]);
  }, 60_000);

  it('a systemic rejection that starts on a quiet day, after deliveries, one event at a time: none dead-lettered', async () => {
    worker = await start({ concurrency: 1 });
    await record(db.sql, event(0));
    await capture.waitFor(1, { timeoutMs: 10_000 });
    await settled();
    capture.rejectEventsWhere(() => true, { status: 400 });
    const quiet: string[] = [];
    for (let i = 1; i <= 8; i++) {
      quiet.push(...(await record(db.sql, event(i))));
      await sleep(150); // the scenario: a quiet day, one event at a time
    }
    await until(attempts, (a) => a.length === 8 && Math.min(...a) >= 3, { what: 'three refusals of each quiet event', timeoutMs: 20_000 });
    expect(await deadLetterRows(db.sql)).toEqual([]);
    capture.clearFaults();
    await capture.waitFor((events) => quiet.every((u) => events.some((e) => e.uuid === u)), { timeoutMs: 15_000 });
    await settled();
    expect(await deadLetterRows(db.sql)).toEqual([]);
  }, 60_000);

  it('a systemic rejection that ends in the middle of a bisection: the events pinned before it ended are delivered, not dead-lettered', async () => {
    // 64 -> 32 -> 16 -> 8 -> 4 -> 2 -> 1 -> 1 refused (two events pinned), then PostHog accepts again
    capture.rejectEventsWhere(() => true, { status: 400, times: 8 });
    const uuids = await record(
      db.sql,
      Array.from({ length: 64 }, (_, i) => event(i)),
    );
    worker = await start({ batchSize: 64, concurrency: 1 });
    await capture.waitFor(64, { timeoutMs: 20_000 });
    await settled();
    expect(capture.requests.filter((r) => r.status === 400).map((r) => r.events)).toEqual([64, 32, 16, 8, 4, 2, 1, 1]);
    expect(await deadLetterRows(db.sql)).toEqual([]);
    expect(new Set(capture.events.map((e) => e.uuid))).toEqual(new Set(uuids));
    expect(worker.totals.held).toBe(2);
  }, 30_000);

  it('one poison event among 1,000: the only dead letter, with PostHog’s reason; the 999 others delivered once', async () => {
    capture.rejectEventsWhere((e) => e.event === 'poison', { status: 400, message: 'event payload rejected: $set is not an object' });
    const at = 613;
    const uuids = await record(
      db.sql,
      Array.from({ length: 1000 }, (_, i) => event(i, i === at ? { event: 'poison' } : {})),
    );
    worker = await start({ batchSize: 1000, concurrency: 1 });
    await capture.waitFor(999, { timeoutMs: 20_000 });
    await settled();
    const dead = await deadLetterRows(db.sql);
    expect(dead.map((d) => d.uuid)).toEqual([uuids[at]]);
    expect(dead[0]!.reason).toMatch(/^PostHog answered HTTP 400: .*event payload rejected/);
    expect(capture.duplicates()).toEqual([]);
    expect(capture.events).toHaveLength(999);
  }, 30_000);

  it('a poison event alone in a fresh worker’s first batch: kept until PostHog accepts another event, then dead-lettered', async () => {
    capture.rejectEventsWhere((e) => e.event === 'poison', { status: 400 });
    const [poison] = await record(db.sql, event(0, { event: 'poison' }));
    worker = await start({ concurrency: 1 });
    await until(
      () => worker!.totals.held,
      (n) => n >= 1,
      { what: 'the lone rejection to be held', timeoutMs: 10_000 },
    );
    expect(await deadLetterRows(db.sql)).toEqual([]);
    const [row] = await db.sql<{ rejected_at: Date | null }[]>`SELECT rejected_at FROM posthog_outbox.outbox WHERE uuid = ${poison!}`;
    expect(row?.rejected_at).not.toBeNull();
    const [good] = await record(db.sql, event(1));
    await capture.waitFor(1, { timeoutMs: 10_000 });
    const dead = await until(
      () => deadLetterRows(db.sql),
      (rows) => rows.length === 1,
      { what: 'the poison event to be dead-lettered', timeoutMs: 15_000 },
    );
    expect(dead[0]!.uuid).toBe(poison);
    expect(capture.events.map((e) => e.uuid)).toEqual([good]);
    await settled();
  }, 30_000);
});

describe('maximum age', () => {
  it('an event older than --max-age is dead-lettered, not sent, with a reason that says so', async () => {
    const [old] = await record(db.sql, event(1, { event: 'ancient' }));
    const [fresh] = await record(db.sql, event(2));
    await db.sql`UPDATE posthog_outbox.outbox SET created_at = now() - interval '8 days' WHERE uuid = ${old!}`;
    worker = await start();
    await capture.waitFor(1, { timeoutMs: 10_000 });
    await settled();
    const dead = await deadLetterRows(db.sql);
    expect(dead.map((d) => d.uuid)).toEqual([old]);
    expect(dead[0]!.reason).toBe('older than the maximum age (7 days) when it was claimed: not sent');
    expect(capture.events.map((e) => e.uuid)).toEqual([fresh]);
  });
});
