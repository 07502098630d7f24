/**
 * Real workers against the capture server: `$ai_*` events go to PostHog's AI endpoint (`/i/v0/ai/batch/`, 8 MiB
 * per event) in requests of their own, in v0 and V1 mode, while the other events of the same drain keep to
 * `/batch/` or V1; record() takes AI events over /batch/'s 1 MB and refuses them over the AI limit; a 413 from the
 * AI endpoint is bisected and pinned like a 400. Events older than `historicalAfterMs` go flagged
 * `historical_migration`, and events recorded while such a backlog drains arrive unflagged, before it ends.
 */
import { describe, expect, it } from 'vitest';
import type { CaptureServer } from '../../dev/capture-server.ts';
import { OutboxError } from '../../src/errors/errors.ts';
import type { OutboxEvent } from '../../src/record/event.ts';
import { record } from '../../src/record/record.ts';
import { MAX_AI_EVENT_BYTES, MAX_EVENT_BYTES } from '../../src/record/validate.ts';
import type { WorkerOptions } from '../../worker/index.ts';
import type { TestDatabase } from '../support/db.ts';
import { deadLetterRows, inProcessWorkers, outboxCount, outboxEmpty, totalsReach } from '../support/worker.ts';

const KEY = 'phc_ai';
let db: TestDatabase;
let capture: CaptureServer;
const startWorker = inProcessWorkers(KEY, (fixture) => ({ db, capture } = fixture), { backoff: { baseMs: 100, maxMs: 500 }, batchSize: 100 });
const start = (captureMode: 'v0' | 'v1', options: Partial<WorkerOptions> = {}) =>
  startWorker({ posthog: { apiKey: KEY, host: capture.url, requestTimeoutMs: 5_000, captureMode }, ...options });

const MB = 1_000_000;
const HOUR = 3_600_000;

function event(i: number, overrides: Partial<OutboxEvent> = {}): OutboxEvent {
  return { event: 'tool_called', distinctId: `user_${i % 3}`, properties: { i }, groups: {}, profiles: {}, ...overrides };
}
const generation = (i: number, bytes: number): OutboxEvent => event(i, { event: '$ai_generation', properties: { i, $ai_input: 'x'.repeat(bytes) } });

const settled = (timeoutMs = 30_000) => outboxEmpty(db.sql, { what: 'the outbox to empty', timeoutMs });
const endpointsOf = (uuids: readonly string[]) =>
  uuids.map((u) =>
    capture
      .byUuid()
      .get(u)
      ?.map((e) => e.endpoint),
  );

describe('$ai_* events through the AI endpoint', () => {
  it.each(['v0', 'v1'] as const)(
    '%s mode: 2-3 MB generations go to /i/v0/ai/batch/ once each, the other events of the drain to their own endpoint',
    async (mode) => {
      const uuids = await db.sql.begin((sql) =>
        record(sql, [event(0), generation(1, 2 * MB), event(2), generation(3, 3 * MB), event(4, { event: '$ai_span' }), event(5)]),
      );
      const worker = await start(mode);
      await settled();
      const other = mode === 'v0' ? 'v0' : 'v1';
      expect(endpointsOf(uuids)).toEqual([[other], ['ai'], [other], ['ai'], ['ai'], [other]]);
      // Each request carries one kind only: the AI endpoint never sees an analytics event, nor /batch/ an $ai_* one.
      for (const r of capture.requests) expect(r.uuids.every((u) => [1, 3, 4].includes(uuids.indexOf(u))) === (r.endpoint === 'ai')).toBe(true);
      expect(capture.requests.every((r) => r.status === 200)).toBe(true);
      await totalsReach(worker, { delivered: 6, deadLettered: 0 });
      expect(capture.events.find((e) => e.uuid === uuids[3])!.properties.$ai_input).toHaveLength(3 * MB);
    },
  );

  it('record() takes an $ai_* event up to the AI limit and any other event up to /batch/`s, naming the field and the limit', async () => {
    const refusal = (e: OutboxEvent) => db.sql.begin((sql) => record(sql, [event(0), e])).catch((error: unknown) => error);
    const ai = await refusal(generation(1, 9 * 1024 * 1024));
    expect(ai).toBeInstanceOf(OutboxError);
    expect(ai).toMatchObject({ code: 'too_large', field: 'events[1].properties' });
    expect((ai as Error).message).toContain(`PostHog's AI endpoint accepts at most ${MAX_AI_EVENT_BYTES} per $ai_* event`);
    const plain = await refusal(event(1, { properties: { blob: 'x'.repeat(2 * MB) } }));
    expect(plain).toMatchObject({ code: 'too_large', field: 'events[1].properties' });
    expect((plain as Error).message).toContain(`PostHog accepts at most ${MAX_EVENT_BYTES} per event`);
    expect(await outboxCount(db.sql)).toBe(0);
    await db.sql.begin((sql) => record(sql, generation(1, MAX_AI_EVENT_BYTES - 2_000)));
    expect(await outboxCount(db.sql)).toBe(1);
  });

  it('a 413 from the AI endpoint is bisected: the event refused alone is pinned and dead-lettered, the others delivered once', async () => {
    capture.rejectEventsWhere((e) => e.event === '$ai_generation' && Number(e.properties?.i) === 2, { status: 413 });
    const uuids = await db.sql.begin((sql) =>
      record(
        sql,
        [1, 2, 3, 4].map((i) => generation(i, 1_000)),
      ),
    );
    await start('v0');
    await settled();
    const counts = capture.countsByUuid();
    expect(uuids.map((u) => counts.get(u))).toEqual([1, undefined, 1, 1]);
    const dead = await deadLetterRows(db.sql);
    expect(dead.map((d) => d.uuid)).toEqual([uuids[1]]);
    expect(dead[0]!.reason).toContain('PostHog answered HTTP 413');
    expect(capture.requests.every((r) => r.endpoint === 'ai')).toBe(true);
  });
});

describe('the historical lane', () => {
  it('a backlog older than the threshold goes flagged historical_migration; events recorded meanwhile arrive unflagged, before it ends', async () => {
    const old = new Date(Date.now() - 2 * HOUR);
    const backlog = await db.sql.begin((sql) =>
      record(
        sql,
        Array.from({ length: 1_000 }, (_, i) => event(i, { timestamp: old })),
      ),
    );
    // Every request of the drain takes 150 ms more: the backlog lasts ~1.5 s on one lane.
    capture.delayNext(30, 150);
    await start('v0', { batchSize: 50, concurrency: 1 });
    await capture.waitForRequests(2);
    const fresh = await db.sql.begin((sql) => record(sql, [event(1), event(2, { event: '$ai_generation' }), event(3)]));
    await settled();

    const counts = capture.countsByUuid();
    expect([...backlog, ...fresh].every((u) => counts.get(u) === 1)).toBe(true);
    const byUuid = new Map(capture.events.map((e) => [e.uuid!, e]));
    expect(backlog.every((u) => byUuid.get(u)!.historicalMigration)).toBe(true);
    expect(fresh.map((u) => [byUuid.get(u)!.historicalMigration, byUuid.get(u)!.endpoint])).toEqual([
      [false, 'v0'],
      [false, 'ai'],
      [false, 'v0'],
    ]);
    // Promptly: the live lane took them while the backlog was still going out.
    const lastOfBacklog = Math.max(...backlog.map((u) => byUuid.get(u)!.receivedAt));
    for (const u of fresh) expect(byUuid.get(u)!.receivedAt).toBeLessThan(lastOfBacklog);
    // No request mixes historical and live events.
    for (const r of capture.requests) expect(new Set(r.uuids.map((u) => backlog.includes(u))).size).toBe(1);
  });

  it('V1 mode: old and fresh events of one batch go in separate requests, only the old ones flagged; 0 disables the lane', async () => {
    const old = new Date(Date.now() - 2 * HOUR);
    const uuids = await db.sql.begin((sql) => record(sql, [event(0, { timestamp: old }), event(1), event(2, { timestamp: old }), event(3)]));
    const v1 = await start('v1');
    await settled();
    await v1.stop();
    const byUuid = new Map(capture.events.map((e) => [e.uuid!, e]));
    expect(uuids.map((u) => [byUuid.get(u)?.endpoint, byUuid.get(u)?.historicalMigration])).toEqual([
      ['v1', true],
      ['v1', false],
      ['v1', true],
      ['v1', false],
    ]);
    // Live first.
    expect(capture.requests.map((r) => r.historicalMigration)).toEqual([false, true]);

    capture.reset();
    const again = await db.sql.begin((sql) => record(sql, [event(0, { timestamp: old }), event(1)]));
    await start('v0', { historicalAfterMs: 0 });
    await settled();
    expect(capture.requests.map((r) => [r.uuids.length, r.historicalMigration])).toEqual([[2, false]]);
    expect(again.map((u) => capture.countsByUuid().get(u))).toEqual([1, 1]);
  });
});
