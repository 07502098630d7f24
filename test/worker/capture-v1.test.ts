/**
 * Workers in Capture V1 mode (`posthog.captureMode: 'v1'`) against the capture server answering per-event
 * verdicts: every `ok` / `warning` event arrives once, each `drop` is a dead letter carrying PostHog's details,
 * each `retry` event is sent again (alone, after the worker's backoff) until PostHog takes it, and no event is
 * sent again once PostHog gave it any other verdict (counted per uuid across every request). Request-level
 * failures (503, 429 with Retry-After, a timeout, over quota) are target failures as on v0: backoff, then one
 * delivery.
 */
import { describe, expect, it } from 'vitest';
import type { CaptureServer } from '../../dev/capture-server.ts';
import type { OutboxEvent } from '../../src/record/event.ts';
import { record } from '../../src/record/record.ts';
import type { OutboxWorker, PassStats, WorkerOptions } from '../../worker/index.ts';
import type { TestDatabase } from '../support/db.ts';
import { deadLetterRows, inProcessWorkers, outboxCount, until, outboxEmpty, totalsReach } from '../support/worker.ts';

const KEY = 'phc_v1';
let db: TestDatabase;
let capture: CaptureServer;
const startWorker = inProcessWorkers(KEY, (fixture) => ({ db, capture } = fixture), { backoff: { baseMs: 100, maxMs: 1_000 }, batchSize: 100 });
const V1_PATH = '/i/v1/analytics/events';

/** A worker in Capture V1 mode over the capture server. */
function start(options: Partial<WorkerOptions> = {}): Promise<OutboxWorker> {
  return startWorker({ posthog: { apiKey: KEY, host: capture.url, requestTimeoutMs: 1_000, captureMode: 'v1' }, ...options });
}

function event(i: number, overrides: Partial<OutboxEvent> = {}): OutboxEvent {
  return { event: 'tool_called', distinctId: `user_${i % 3}`, properties: { i }, groups: {}, profiles: {}, ...overrides };
}

const recordEvents = (n: number) =>
  db.sql.begin((sql) =>
    record(
      sql,
      Array.from({ length: n }, (_, i) => event(i)),
    ),
  );
const settled = (timeoutMs = 20_000) => outboxEmpty(db.sql, { what: 'the outbox to empty', timeoutMs });
/** How many requests carried each uuid (whatever their answer). */
const sends = (uuid: string) => capture.requests.filter((r) => r.uuids.includes(uuid)).length;
const i = (item: { properties?: Record<string, unknown> }) => Number(item.properties?.i);

describe('per-event verdicts', () => {
  it('a mix of ok, warning, drop and retry: ok/warning once, drops dead-lettered with the details, retries until taken, nothing re-sent once answered', async () => {
    // Of 40 events: i % 10 == 1 warning, 2 drop (over the quota), 3 drop (invalid), 4 retry twice each, the rest ok.
    capture.verdictWhere((e) => i(e) % 10 === 1, 'warning', { details: 'person_processing_disabled' });
    capture.verdictWhere((e) => i(e) % 10 === 2, 'drop', { details: 'billing_limit_exceeded' });
    capture.verdictWhere((e) => i(e) % 10 === 3, 'drop', { details: 'invalid_event_timestamp' });
    capture.verdictWhere((e) => i(e) % 10 === 4, 'retry', { details: 'not_persisted', times: 8 });
    const uuids = await recordEvents(40);
    const byI = (rest: number) => uuids.filter((_, n) => n % 10 === rest);
    const warnings: [object, string][] = [];
    const logger = { info() {}, error() {}, warn: (o: object, message?: string) => void warnings.push([o, message ?? '']) };
    const runs: PassStats[] = [];
    const worker = await start({ logger, metrics: { port: 0, host: '127.0.0.1' } });
    worker.on('pass', (stats) => runs.push(stats));
    await settled();

    const counts = capture.countsByUuid();
    const delivered = uuids.filter((_, n) => ![2, 3].includes(n % 10));
    expect(delivered.map((u) => counts.get(u))).toEqual(delivered.map(() => 1));
    expect([...byI(2), ...byI(3)].map((u) => counts.get(u))).toEqual([0, 0, 0, 0, 0, 0, 0, 0].map(() => undefined));
    // Sent once each, but the retry events: three times (retry, retry, ok), never with an answered event.
    expect(uuids.filter((_, n) => n % 10 !== 4).map(sends)).toEqual(uuids.filter((_, n) => n % 10 !== 4).map(() => 1));
    expect(byI(4).map(sends)).toEqual([3, 3, 3, 3]);
    expect(capture.requests.every((r) => r.path === V1_PATH && r.attempt === 1)).toBe(true);

    const dead = await deadLetterRows(db.sql);
    expect(dead).toHaveLength(8);
    const reasons = new Map(dead.map((d) => [d.uuid, d]));
    for (const u of byI(2)) expect(reasons.get(u)).toMatchObject({ attempts: 1, reason: expect.stringContaining('billing_limit_exceeded') });
    for (const u of byI(3))
      expect(reasons.get(u)?.reason).toBe('PostHog dropped the event (Capture V1 verdict drop: invalid_event_timestamp): it will not ingest it');

    await totalsReach(worker, { delivered: 32, warned: 4, deadLettered: 8, retried: 8 });
    // The warnings: accepted with PostHog's note, logged once for their batch, the last in the run's stats, counted.
    expect(capture.events.filter((e) => e.verdict === 'warning').map((e) => e.uuid)).toEqual(byI(1));
    const logged = warnings.filter(([, m]) => m.startsWith('PostHog accepted'));
    expect(logged).toHaveLength(1);
    expect(logged[0]![1]).toBe('PostHog accepted 4 event(s) of a batch with a warning (Capture V1): person_processing_disabled (4)');
    expect(logged[0]![0]).toMatchObject({ details: { person_processing_disabled: 4 }, warned: 4 });
    expect(runs.find((r) => r.warned > 0)?.warning).toBe(logged[0]![1]);
    expect(await (await fetch(`${worker.healthUrl}/metrics`)).text()).toMatch(/^posthog_outbox_warnings_total 4$/m);
    // A retry verdict is that event's, not the target's: the worker never counted PostHog as failing.
    expect(worker.target.failingSince).toBeNull();
  });

  it('retry for every event of a request: a target failure (PostHog not ingesting now), then delivered once', async () => {
    capture.verdictWhere(() => true, 'retry', { details: 'not_persisted', times: 10 });
    const uuids = await recordEvents(10);
    const worker = await start();
    await settled();
    expect(uuids.map((u) => capture.countsByUuid().get(u))).toEqual(uuids.map(() => 1));
    expect(uuids.map(sends)).toEqual(uuids.map(() => 2));
    await totalsReach(worker, { delivered: 10, retried: 10, deadLettered: 0 });
    expect(await deadLetterRows(db.sql)).toEqual([]);
  });

  it('$ai_* events in V1 mode: a request of their own to the AI endpoint, the rest through V1, each once', async () => {
    const uuids = await db.sql.begin((sql) => record(sql, [event(1), event(2, { event: '$ai_generation' }), event(3)]));
    await start();
    await settled();
    expect(uuids.map((u) => capture.countsByUuid().get(u))).toEqual([1, 1, 1]);
    const pathOf = (u: string) => capture.requests.find((r) => r.uuids.includes(u))?.path;
    expect(uuids.map(pathOf)).toEqual([V1_PATH, '/i/v0/ai/batch/', V1_PATH]);
  });
});

describe('request-level failures on V1: target failures, as on v0', () => {
  it.each<[string, (capture: CaptureServer) => void]>([
    ['503', (c) => c.failNext(1, 503)],
    ['429 with Retry-After', (c) => c.failNext(1, 429, { retryAfter: 1 })],
    ['a timeout (PostHog ingests the request after the worker gave up)', (c) => c.delayNext(1, 1_500)],
    ['a lost connection', (c) => c.dropNext(1)],
  ])('%s: backs off, then delivers each event once, nothing dead-lettered', async (_name, fault) => {
    fault(capture);
    const uuids = await recordEvents(10);
    const worker = await start();
    await settled();
    // A late copy is PostHog ingesting the request the worker timed out on: the expected duplicate of a timeout.
    expect(uuids.map((u) => capture.countsByUuid({ ignoreLate: true }).get(u))).toEqual(uuids.map(() => 1));
    expect(uuids.map(sends)).toEqual(uuids.map(() => 2));
    await totalsReach(worker, { delivered: 10, retried: 10, deadLettered: 0 });
    expect(await deadLetterRows(db.sql)).toEqual([]);
  });

  it('over quota (V1 answers 429 billing_limit_exceeded): a target failure, kept, not dead-lettered; delivered once when back', async () => {
    capture.overQuota(true);
    const uuids = await recordEvents(10);
    const worker = await start();
    await until(
      () => worker.target.failingSince,
      (since) => since !== null,
      { what: 'the target to fail' },
    );
    expect(worker.target.reason).toMatch(/HTTP 429.*billing_limit_exceeded/);
    expect(await outboxCount(db.sql)).toBe(10);
    expect(await deadLetterRows(db.sql)).toEqual([]);
    capture.overQuota(false);
    await settled();
    expect(uuids.map((u) => capture.countsByUuid().get(u))).toEqual(uuids.map(() => 1));
    expect(await deadLetterRows(db.sql)).toEqual([]);
  });
});
