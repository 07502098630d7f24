/**
 * The worker against a real PostgreSQL, real posthog-node and the project's capture server: delivery,
 * failures, poison events, corrupted rows and re-identification.
 */
import { describe, expect, it } from 'vitest';
import type { CaptureServer } from '../../dev/capture-server.ts';
import type { OutboxEvent } from '../../src/record/event.ts';
import { OutboxError } from '../../src/errors/errors.ts';
import { record } from '../../src/record/record.ts';
import type { OutboxWorker } from '../../worker/index.ts';
import type { TestDatabase } from '../support/db.ts';
import { deadLetterRows, inProcessWorkers, nothingInFlight, outboxCount, until, outboxEmpty } from '../support/worker.ts';

let db: TestDatabase;
let capture: CaptureServer;
let worker: OutboxWorker | undefined;

const start = inProcessWorkers('phc_test', (fixture) => ({ db, capture } = fixture), {
  backoff: { baseMs: 100, maxMs: 1_000 },
  batchSize: 100,
  requestTimeoutMs: 2_000,
});

function event(i: number, overrides: Partial<OutboxEvent> = {}): OutboxEvent {
  return {
    event: 'tool_called',
    distinctId: `user_${i % 3}`,
    properties: { i, $groups: { organization: 'org_1' } },
    groups: { organization: 'org_1' },
    profiles: {},
    ...overrides,
  };
}

const settled = (what = 'the outbox to empty') => outboxEmpty(db.sql, { what });

describe('delivery', () => {
  it('delivers committed events with the uuid and timestamp written at record time, and deletes them', async () => {
    worker = await start();
    const at = new Date('2026-05-01T12:00:00.000Z');
    const uuids = await db.sql.begin((sql) => record(sql, [event(1, { timestamp: at }), event(2)]));
    await capture.waitFor(2, { timeoutMs: 10_000 });
    await settled();
    const received = capture.events;
    expect(received.map((e) => e.uuid).sort()).toEqual([...uuids].sort());
    const first = received.find((e) => e.uuid === uuids[0])!;
    expect(first.event).toBe('tool_called');
    expect(first.distinct_id).toBe('user_1');
    expect(new Date(first.timestamp as string).toISOString()).toBe(at.toISOString());
    expect(first.properties).toMatchObject({ i: 1, $groups: { organization: 'org_1' } });
  });

  it.each([0, 1_500.5, -3_000])('refuses leaseMs %s with an OutboxError naming it, before connecting', async (leaseMs) => {
    const refused = await start({ leaseMs }).then(
      () => null,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(OutboxError);
    expect((refused as OutboxError).field).toBe('leaseMs');
  });

  it('delivers nothing for a rolled-back transaction', async () => {
    worker = await start();
    await expect(
      db.sql.begin(async (sql) => {
        await record(sql, event(1, { event: 'rolled_back' }));
        throw new Error('rollback');
      }),
    ).rejects.toThrow('rollback');
    await db.sql.begin((sql) => record(sql, event(2, { event: 'committed' })));
    await capture.waitFor(1, { timeoutMs: 10_000 });
    await settled(); // the outbox empty (the rolled-back event was never in it), nothing on its way
    await nothingInFlight(capture);
    expect(capture.events.map((e) => e.event)).toEqual(['committed']);
  });

  it('delivers what was committed before the worker started, in batches', async () => {
    await record(
      db.sql,
      Array.from({ length: 350 }, (_, i) => event(i)),
    );
    worker = await start({ batchSize: 100 });
    await capture.waitFor(350, { timeoutMs: 15_000 });
    await settled();
    expect(capture.duplicates()).toEqual([]);
    const sizes = capture.requests.filter((r) => r.status === 200).map((r) => r.events);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(100);
  });

  it('delivers an event committed late, due before everything a draining run has claimed since', async () => {
    // A pass's claims start where its last one ended (worker/claim/claim.sql.ts, claimBatch): this event's uuid (its
    // write time) comes before the backlog's, but it is only visible once it commits, mid-drain, behind that
    // point. The next run claims it.
    let commit!: () => void;
    const gate = new Promise<void>((resolve) => (commit = resolve));
    const late = db.sql.begin(async (tx) => {
      const uuids = await record(tx, [event(0)]);
      await gate;
      return uuids;
    });
    for (let k = 0; k < 10; k++)
      await record(
        db.sql,
        Array.from({ length: 100 }, (_, i) => event(k * 100 + i)),
      );
    capture.delayNext(6, 100); // a drain that takes a few requests' time
    worker = await start({ batchSize: 100, concurrency: 2 });
    await until(
      () => outboxCount(db.sql),
      (n) => n <= 700,
      { what: 'the drain to be under way' },
    );
    commit();
    const [uuid] = await late;
    await capture.waitFor(1001, { timeoutMs: 15_000 });
    await settled();
    expect(capture.events.filter((e) => e.uuid === uuid)).toHaveLength(1);
    expect(capture.duplicates()).toEqual([]);
  });
});

describe('PostHog failures', () => {
  it('retries through an outage (5xx) and delivers everything once PostHog recovers', async () => {
    capture.failNext(3, 503);
    worker = await start();
    const uuids = await record(
      db.sql,
      Array.from({ length: 20 }, (_, i) => event(i)),
    );
    await capture.waitFor(20, { timeoutMs: 15_000 });
    await settled();
    expect(new Set(capture.events.map((e) => e.uuid))).toEqual(new Set(uuids));
    expect(capture.requests.filter((r) => r.status === 503)).toHaveLength(3);
    expect(await deadLetterRows(db.sql)).toEqual([]);
  });

  it('honours Retry-After on 429', async () => {
    capture.failNext(1, 429, { retryAfter: 2 });
    worker = await start();
    await record(db.sql, event(1));
    const started = Date.now();
    await capture.waitFor(1, { timeoutMs: 15_000 });
    const rejected = capture.requests.find((r) => r.status === 429)!;
    const accepted = capture.requests.find((r) => r.status === 200)!;
    expect(accepted.at - rejected.at).toBeGreaterThanOrEqual(1_900);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_900);
  });

  it('sends nothing before Retry-After has passed, on any lane, with a backlog waiting (delta-seconds)', async () => {
    const concurrency = 2;
    capture.failNext(1, 429, { retryAfter: 2 });
    await record(
      db.sql,
      Array.from({ length: 300 }, (_, i) => event(i)),
    );
    worker = await start({ batchSize: 50, concurrency });
    await capture.waitFor(300, { timeoutMs: 20_000 });
    await settled();
    const refused = capture.requests.find((r) => r.status === 429)!;
    // Only a request another lane had already sent when the 429 came back may follow it within Retry-After.
    const early = capture.requests.filter((r) => r.id > refused.id && r.at < refused.at + 2_000);
    expect(early.length).toBeLessThanOrEqual(concurrency - 1);
    expect(capture.duplicates()).toEqual([]);
    expect(await deadLetterRows(db.sql)).toEqual([]);
  });

  it('honours Retry-After given as an HTTP date', async () => {
    const notBefore = new Date(Math.ceil((Date.now() + 2_500) / 1000) * 1000); // HTTP dates have whole seconds
    capture.failNext(1, 429, { retryAfter: notBefore.toUTCString() });
    worker = await start();
    const [uuid] = await record(db.sql, event(1));
    await capture.waitFor(1, { timeoutMs: 15_000 });
    const accepted = capture.requests.find((r) => r.status === 200)!;
    expect(accepted.uuids).toEqual([uuid]);
    expect(accepted.at).toBeGreaterThanOrEqual(notBefore.getTime() - 1_000); // whole seconds: at most 1 s early
    expect(capture.requests.filter((r) => r.at < accepted.at).map((r) => r.status)).toEqual([429]);
  });

  it('retries after a timeout and after a dropped connection, with the same uuids', async () => {
    capture.delayNext(1, 3_000); // longer than the 2 s request timeout
    capture.dropNext(1);
    worker = await start();
    const uuids = await record(db.sql, [event(1), event(2)]);
    await until(
      () => capture.events.filter((e) => !e.late).length,
      (n) => n >= 2,
      { what: 'delivery after faults', timeoutMs: 15_000 },
    );
    await settled();
    expect(new Set(capture.events.map((e) => e.uuid))).toEqual(new Set(uuids));
  });

  it('isolates a poison event by bisection, dead-letters it with PostHog’s answer, delivers the rest', async () => {
    capture.rejectEventsWhere((e) => e.event === 'poison', { status: 400 });
    worker = await start();
    const events = Array.from({ length: 40 }, (_, i) => event(i, i === 17 ? { event: 'poison' } : {}));
    await record(db.sql, events);
    await capture.waitFor(39, { timeoutMs: 15_000 });
    await settled();
    expect(capture.events.some((e) => e.event === 'poison')).toBe(false);
    expect(capture.duplicates()).toEqual([]);
    const dead = await deadLetterRows(db.sql);
    expect(dead).toHaveLength(1);
    expect(dead[0]!.event).toBe('poison');
    expect(dead[0]!.reason).toMatch(/^PostHog answered HTTP 400/);
  });

  it('bisects a batch of 64 down to the rejected event in log2 steps, confirms it alone once more, dead-letters it with PostHog’s reason, delivers the other 63 once', async () => {
    capture.rejectEventsWhere((e) => e.event === 'poison', { message: 'event payload rejected: $set is not an object' });
    const events = Array.from({ length: 64 }, (_, i) => event(i, i === 41 ? { event: 'poison' } : {}));
    const uuids: string[] = [];
    for (const e of events) uuids.push(...(await record(db.sql, e))); // 64 rows: one batch of 64
    worker = await start({ batchSize: 64, concurrency: 1 });
    await capture.waitFor(63, { timeoutMs: 15_000 });
    await settled();
    // 64 -> 32 -> 16 -> 8 -> 4 -> 2 -> 1: at each level the half holding it is refused and split again, the
    // other half is delivered; 13 requests, not one per event. Refused alone once, the event is kept and
    // tried again after its backoff: refused alone again after PostHog accepted others, it is dead-lettered.
    const sizes = (status: number) =>
      capture.requests
        .filter((r) => r.status === status)
        .map((r) => r.events)
        .sort((a, b) => b - a);
    expect(sizes(400)).toEqual([64, 32, 16, 8, 4, 2, 1, 1]);
    expect(sizes(200)).toEqual([32, 16, 8, 4, 2, 1]);
    expect(capture.requests).toHaveLength(14);
    const dead = await deadLetterRows(db.sql);
    expect(dead.map((d) => d.uuid)).toEqual([uuids[41]]);
    expect(dead[0]!.reason).toMatch(/^PostHog answered HTTP 400: .*event payload rejected: \$set is not an object/);
    expect(dead[0]!.attempts).toBe(2);
    expect(capture.duplicates()).toEqual([]);
    expect(new Set(capture.events.map((e) => e.uuid))).toEqual(new Set(uuids.filter((_, i) => i !== 41)));
  });

  it('keeps the request rate bounded during an outage', async () => {
    const backoff = { baseMs: 100, maxMs: 1_000 };
    const concurrency = 2;
    const outageMs = 3_000;
    capture.failFor(outageMs, 503);
    worker = await start({ batchSize: 10, concurrency, backoff });
    const uuids = await record(
      db.sql,
      Array.from({ length: 500 }, (_, i) => event(i)),
    );
    await capture.waitFor(500, { timeoutMs: 30_000 });
    await settled();
    // The shortest pause after the k-th failed pass in a row (the backoff's half-jitter floor).
    const minPause = (k: number) => Math.min(backoff.maxMs, backoff.baseMs * 2 ** (k - 1)) / 2;
    // The most runs that can start within the outage: the first at once, each next one after its pause.
    let runs = 0;
    for (let t = 0; t < outageMs; t += minPause(runs)) runs++;
    const failed = capture.requests.filter((r) => r.status === 503);
    // 50 batches of backlog, but the first run's lanes stop at its first failure and every run after a failed
    // one is a single-lane probe: `concurrency` requests, then one per backoff step (10 here), not one per batch.
    expect(failed.length).toBeLessThanOrEqual(concurrency + runs - 1);
    // While paused nothing is sent (no kick, NOTIFY or timer starts a run), and the pauses grow: after the
    // first run's requests, the k-th gap between failed requests is at least the k-th shortest pause.
    const at = failed.map((r) => r.at);
    for (let i = concurrency; i < at.length; i++)
      expect(at[i]! - at[i - 1]!, `gap before failed request ${i + 1}`).toBeGreaterThanOrEqual(minPause(i - concurrency + 1) - 5);
    // Once PostHog is back, everything arrives, once.
    expect(new Set(capture.events.map((e) => e.uuid))).toEqual(new Set(uuids));
    expect(capture.duplicates()).toEqual([]);
    expect(await deadLetterRows(db.sql)).toEqual([]);
  });

  it('gives back the rest of a bisection unsent, without counting an attempt, when PostHog fails midway', async () => {
    // The whole batch is refused (400: bisect), then its first half meets an outage (503): the second half
    // must not be sent in that run, nor be charged an attempt.
    capture.rejectEventsWhere(() => true, { status: 400, times: 1 });
    capture.rejectEventsWhere(() => true, { status: 503, times: 1 });
    const uuids = await record(
      db.sql,
      Array.from({ length: 4 }, (_, i) => event(i)),
    );
    worker = await start({ batchSize: 4, concurrency: 1, backoff: { baseMs: 60_000, maxMs: 60_000 } });
    await until(
      () => worker!.totals.released,
      (n) => n === 2,
      { what: 'the second half to be released' },
    );
    expect(capture.requests.map((r) => [r.status, r.events])).toEqual([
      [400, 4],
      [503, 2],
    ]);
    const failedHalf = new Set(capture.requests[1]!.uuids);
    const rows = await db.sql<{ uuid: string; attempts: number; last_error: string | null; due: boolean }[]>`
      SELECT uuid, attempts, last_error, next_attempt_at <= now() AS due FROM posthog_outbox.outbox`;
    expect(rows.map((r) => r.uuid).sort()).toEqual([...uuids].sort());
    for (const row of rows) {
      if (failedHalf.has(row.uuid)) {
        expect(row).toMatchObject({ attempts: 1, due: false });
        expect(row.last_error).toMatch(/HTTP 503/);
      } else {
        expect(row).toMatchObject({ attempts: 0, due: true, last_error: null });
      }
    }
    expect(worker.totals).toMatchObject({ requests: 2, retried: 2, released: 2, delivered: 0, deadLettered: 0 });
  });

  it('starts no run while paused after a failure: commits and kicks wait for the pause, then all arrive once', async () => {
    const backoff = { baseMs: 1_500, maxMs: 1_500 }; // every pause lasts 750-1500 ms
    capture.failNext(1, 503);
    worker = await start({ backoff });
    const first = await record(db.sql, event(0));
    const [failure] = await capture.waitForRequests(1, { timeoutMs: 10_000 });
    await until(
      () => worker!.totals.retried,
      (n) => n === 1,
      { what: 'the failed pass to end' },
    );
    // fresh events (each commit NOTIFYs) and explicit kicks during the pause
    const later: string[] = [];
    for (let i = 1; i <= 5; i++) {
      later.push(...(await record(db.sql, event(i))));
      worker.kick();
      await new Promise((r) => setTimeout(r, 50)); // the scenario: commits and kicks spread over the pause
    }
    await capture.waitFor(6, { timeoutMs: 15_000 });
    await settled();
    const next = capture.requests[1]!;
    expect(next.at - failure!.at).toBeGreaterThanOrEqual(backoff.baseMs / 2 - 5);
    expect(new Set(capture.events.map((e) => e.uuid))).toEqual(new Set([...first, ...later]));
    expect(capture.duplicates()).toEqual([]);
  });
});

describe('bad rows', () => {
  it('dead-letters a row whose stored JSON was corrupted by hand, and delivers the others', async () => {
    const [bad] = await record(db.sql, event(1, { event: 'corrupted' }));
    await record(db.sql, event(2));
    await db.sql`UPDATE posthog_outbox.outbox SET properties = '"not an object"'::jsonb WHERE uuid = ${bad!}`;
    worker = await start();
    await capture.waitFor(1, { timeoutMs: 10_000 });
    await settled();
    const dead = await deadLetterRows(db.sql);
    expect(dead.map((d) => d.event)).toEqual(['corrupted']);
    expect(dead[0]!.reason).toMatch(/invalid stored event, not sent: row\.properties/);
  });
});

describe('re-identification', () => {
  it('sends one $identify per user and persona and one $groupidentify per organization per run, newest fields, no nulls', async () => {
    const t = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));
    const profiles = (email: string | undefined, at: number): Partial<OutboxEvent> => ({
      timestamp: t(at),
      profiles: {
        user: { id: 'u1', fields: email ? { email, name: 'Ann' } : { name: 'Ann' } },
        organization: { id: 'org_1', fields: { name: 'Acme', slug: 'acme' } },
      },
    });
    await record(db.sql, [
      event(1, profiles('old@x.io', 1)),
      event(2, profiles('new@x.io', 2)),
      event(3, profiles(undefined, 3)),
      event(4, {
        distinctId: 'automation_a1',
        profiles: {
          user: { id: 'u1', fields: {} },
          automation: { id: 'a1', fields: { name: 'Nightly', is_automation: true, automation_id: 'a1', owner_user_id: 'u1', organization_id: 'org_1' } },
          organization: { id: 'org_1', fields: {} },
        },
      }),
    ]);
    worker = await start();
    await capture.waitFor((events) => events.filter((e) => e.event.startsWith('$')).length >= 3, { timeoutMs: 10_000 });
    await settled();
    await nothingInFlight(capture);
    const identities = capture.events.filter((e) => e.event === '$identify' || e.event === '$groupidentify');
    expect(identities.map((e) => [e.event, e.distinct_id]).sort()).toEqual([
      ['$groupidentify', '$organization_org_1'],
      ['$identify', 'automation_a1'],
      ['$identify', 'u1'],
    ]);
    const user = identities.find((e) => e.distinct_id === 'u1')!;
    expect(user.properties.$set).toEqual({ email: 'new@x.io', name: 'Ann' });
    const org = identities.find((e) => e.event === '$groupidentify')!;
    expect(org.properties).toMatchObject({ $group_type: 'organization', $group_key: 'org_1', $group_set: { name: 'Acme', slug: 'acme' } });
    for (const e of identities) expect(e.uuid).toMatch(/^[0-9a-f-]{36}$/);
    // the run's counters are added to the totals when the run ends, which may be after the outbox emptied
    await until(
      () => worker!.totals.identified,
      (n) => n >= 3,
      { what: 'the run to end' },
    );
    expect(worker.totals.identified).toBe(3);
  });

  it('later batches of a run: rows whose entities the run identified are deleted with nothing re-identified; a new entity among them is identified', async () => {
    const as = (user: string, email: string): Partial<OutboxEvent> => ({
      profiles: { user: { id: user, fields: { email } }, organization: { id: 'org_1', fields: { name: 'Acme' } } },
    });
    // one statement each, in order: each row comes due after the one before it
    for (const [i, user, email] of [
      [1, 'u1', 'a@x.io'],
      [2, 'u1', 'a@x.io'],
      [3, 'u1', 'a@x.io'],
      [4, 'u1', 'a@x.io'],
      [5, 'u2', 'b@x.io'],
      [6, 'u1', 'changed@x.io'],
    ] as const) {
      await record(db.sql, event(i, as(user, email)));
    }
    worker = await start({ batchSize: 2, concurrency: 1 });
    await capture.waitFor((events) => events.filter((e) => e.event.startsWith('$')).length >= 3, { timeoutMs: 10_000 });
    await settled();
    await nothingInFlight(capture);
    const identities = capture.events.filter((e) => e.event.startsWith('$'));
    expect(identities.map((e) => [e.event, e.distinct_id, e.properties.$set ?? e.properties.$group_set]).sort()).toEqual([
      ['$groupidentify', '$organization_org_1', { name: 'Acme' }],
      ['$identify', 'u1', { email: 'a@x.io' }],
      ['$identify', 'u2', { email: 'b@x.io' }],
    ]);
    // u1 was identified by the first batch: the change in the third batch waits for a later run (at most once per run)
    const remembered = await db.sql`SELECT entity_id, fields FROM posthog_outbox.identities WHERE kind = 'user' ORDER BY entity_id`;
    expect(remembered.map((r) => [r.entity_id, r.fields])).toEqual([
      ['u1', { email: 'a@x.io' }],
      ['u2', { email: 'b@x.io' }],
    ]);
    expect(capture.events.filter((e) => !e.event.startsWith('$')).map((e) => e.properties.i)).toEqual([1, 2, 3, 4, 5, 6]);
  });
});
