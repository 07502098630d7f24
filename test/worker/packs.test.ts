/**
 * Packs (several events of one `record()` call stored as one row) through the worker, against a real
 * PostgreSQL, real posthog-node and the capture server: delivered whole, unpacked when their events' fates
 * differ (one refused, the others retried or delivered), corrupted by hand, too old, bigger than a batch.
 */
import { describe, expect, it } from 'vitest';
import type { CaptureServer } from '../../dev/capture-server.ts';
import { attributedEvent, record, type RunContext } from '../../src/index.ts';
import type { TestDatabase } from '../support/db.ts';
import { queuedEvents } from '../support/queued.ts';
import { deadLetterRows, inProcessWorkers, outboxCount, until } from '../support/worker.ts';

let db: TestDatabase;
let capture: CaptureServer;

const start = inProcessWorkers('phc_packs', (fixture) => ({ db, capture } = fixture), {
  backoff: { baseMs: 100, maxMs: 400 },
  requestTimeoutMs: 2_000,
});

const context = (user: string): RunContext => ({
  organization: { id: 'org_1', name: 'Acme', slug: 'acme' },
  user: { id: user, email: `${user}@example.com` },
});
const chat = (user: string, i: number, name = 'chat_message_sent') => attributedEvent(context(user), name, { i });
const rows = async () => (await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM posthog_outbox.outbox`)[0]!.n;
const settled = () =>
  until(
    () => outboxCount(db.sql),
    (n) => n === 0,
    { what: 'the outbox to empty' },
  );
/** Waits for `n` dead letters and the outbox to empty; returns the dead letters. */
async function deadLettered(n: number) {
  await until(
    () => deadLetterRows(db.sql),
    (dead) => dead.length === n,
    { what: `${n} dead letter(s)` },
  );
  await settled();
  return deadLetterRows(db.sql);
}

describe('packs', () => {
  it('five events of one call: one row, delivered with their own uuids, and the users and organization they touched identified once', async () => {
    const uuids = await record(db.sql, [chat('p1', 0), chat('p1', 1), chat('p2', 2), chat('p1', 3), chat('p2', 4)]);
    expect(await rows()).toBe(1);
    await start();
    await capture.waitFor(5 + 3, { timeoutMs: 10_000 });
    await settled();
    const events = capture.events.filter((e) => e.event === 'chat_message_sent');
    expect(events.map((e) => e.uuid).sort()).toEqual([...uuids].sort());
    expect(events.map((e) => [e.distinct_id, (e.properties as { i: number }).i]).sort()).toEqual([
      ['p1', 0],
      ['p1', 1],
      ['p1', 3],
      ['p2', 2],
      ['p2', 4],
    ]);
    const identified = capture.events.filter((e) => e.event !== 'chat_message_sent').map((e) => `${e.event} ${e.distinct_id}`);
    expect(identified.sort()).toEqual(['$groupidentify $organization_org_1', '$identify p1', '$identify p2']);
    expect(capture.duplicates()).toEqual([]);
  });

  it('PostHog down (503): the pack waits out its backoff as rows of one event each, attempt counted, then each event is delivered once', async () => {
    capture.failFor(60_000, 503);
    const uuids = await record(db.sql, [chat('p1', 0), chat('p1', 1), chat('p1', 2)]);
    const worker = await start();
    const retrying = await until(
      () => queuedEvents(db.sql),
      (events) => events.length === 3 && events.every((e) => e.attempts === 1),
      { what: 'the pack to be retried' },
    );
    expect(retrying.map((e) => e.uuid)).toEqual(uuids);
    expect(retrying.every((e) => e.pack === null)).toBe(true);
    expect(await rows()).toBe(3);
    const [error] = await db.sql<{ last_error: string }[]>`SELECT DISTINCT last_error FROM posthog_outbox.outbox`;
    expect(error!.last_error).toMatch(/503/);
    capture.clearFaults();
    await db.sql`UPDATE posthog_outbox.outbox SET next_attempt_at = now()`;
    worker.kick();
    await settled();
    const delivered = capture.events.filter((e) => e.event === 'chat_message_sent');
    expect(delivered.map((e) => e.uuid).sort()).toEqual([...uuids].sort());
    expect(capture.duplicates()).toEqual([]);
  });

  it('one event of a pack refused for its content: pinned by bisection, dead-lettered with the pack’s attempts; the others delivered once', async () => {
    capture.rejectEventsWhere((e) => e.event === 'poison', { status: 400 });
    // A poison event is confirmed by a second refusal after PostHog accepted others: the others of its pack.
    const uuids = await record(
      db.sql,
      Array.from({ length: 8 }, (_, i) => chat('p1', i, i === 5 ? 'poison' : 'chat_message_sent')),
    );
    await start();
    const dead = await deadLettered(1);
    expect(dead.map((d) => [d.uuid, d.event, d.attempts])).toEqual([[uuids[5], 'poison', 2]]);
    expect(dead[0]!.reason).toMatch(/HTTP 400/);
    const delivered = capture.events.filter((e) => e.event === 'chat_message_sent').map((e) => e.uuid);
    expect(delivered.sort()).toEqual(uuids.filter((_, i) => i !== 5).sort());
    expect(capture.duplicates()).toEqual([]);
  });

  it('a pack corrupted by hand: each bad event dead-lettered naming its field, the sound ones delivered, nothing lost', async () => {
    const uuids = await record(db.sql, [chat('p1', 0), chat('p1', 1), chat('p1', 2), chat('p1', 3)]);
    await db.sql`
      UPDATE posthog_outbox.outbox SET events = json_build_array(
        events->0,
        (events->>1)::jsonb || '{"properties": "not an object"}',
        (events->>2)::jsonb || '{"uuid": "not-a-uuid"}',
        7
      )`;
    await record(db.sql, [chat('p1', 4), chat('p1', 5)]);
    await db.sql`UPDATE posthog_outbox.outbox SET events = '{"event": "not in an array"}' WHERE events->0->>'uuid' <> ${uuids[0]!}`;
    await start();
    await deadLettered(3);
    const dead = await db.sql<{ uuid: string; event: string; reason: string }[]>`SELECT uuid, event, reason FROM posthog_outbox.dead_letters ORDER BY reason`;
    expect(dead.map((d) => d.reason)).toEqual([
      expect.stringMatching(/^invalid stored event, not sent: row\.distinctId: is required/),
      expect.stringMatching(/^invalid stored event, not sent: row\.event/),
      expect.stringMatching(/^invalid stored event, not sent: row\.properties/),
    ]);
    expect(dead.map((d) => d.uuid)).toContain(uuids[1]);
    const delivered = capture.events.filter((e) => e.event === 'chat_message_sent');
    expect(delivered).toHaveLength(2);
    expect(delivered.map((e) => (e.properties as { i: number }).i).sort()).toEqual([0, 2]);
    expect(delivered.map((e) => e.uuid)).toContain(uuids[0]);
    expect(delivered.map((e) => e.uuid)).not.toContain(uuids[2]); // it had no valid uuid left: it was given one
  });

  it('a row edited into neither an event nor a pack (no check constraint refuses it, migration 0009) is dead-lettered, not retried forever; one that is both is sent as its pack', async () => {
    const [gone] = await record(db.sql, chat('p1', 0));
    const packed = await record(db.sql, [chat('p1', 1), chat('p1', 2)]);
    const [row] = await db.sql<{ uuid: string }[]>`UPDATE posthog_outbox.outbox SET events = NULL WHERE events->0->>'uuid' = ${gone!} RETURNING uuid`;
    await db.sql`UPDATE posthog_outbox.outbox SET event = 'stray', distinct_id = 'p9', properties = '{}', groups = '{}', timestamp = now()
      WHERE events->0->>'uuid' = ${packed[0]!}`;
    await start();
    const dead = await deadLettered(1);
    expect(dead.map((d) => [d.uuid, d.event])).toEqual([[row!.uuid, '']]);
    expect(dead[0]!.reason).toMatch(/^invalid stored event, not sent: row\.event/);
    const delivered = capture.events.filter((e) => e.event === 'chat_message_sent' || e.event === 'stray');
    expect(delivered.map((e) => e.uuid).sort()).toEqual([...packed].sort());
  });

  it('a pack older than the maximum age: each of its events dead-lettered with the reason, none sent', async () => {
    const uuids = await record(db.sql, [chat('p1', 0), chat('p1', 1)]);
    await db.sql`UPDATE posthog_outbox.outbox SET created_at = now() - interval '8 days'`;
    await start();
    const dead = await deadLettered(2);
    expect(dead.map((d) => d.uuid).sort()).toEqual([...uuids].sort());
    expect(dead.every((d) => d.reason.startsWith('older than the maximum age'))).toBe(true);
    expect(capture.events.filter((e) => e.event === 'chat_message_sent')).toEqual([]);
  });

  it('a claim takes whole packs up to the batch size: packs of 20 and 1 with batch size 30, and a pack of 45 over it; each event once', async () => {
    const uuids = [
      ...(await record(
        db.sql,
        Array.from({ length: 20 }, (_, i) => chat('p1', i)),
      )),
      ...(await record(db.sql, chat('p1', 20))),
      ...(await record(
        db.sql,
        Array.from({ length: 20 }, (_, i) => chat('p1', 21 + i)),
      )),
      ...(await record(
        db.sql,
        Array.from({ length: 45 }, (_, i) => chat('p1', 41 + i)),
      )),
    ];
    await start({ batchSize: 30, concurrency: 1 });
    await capture.waitFor((events) => events.filter((e) => e.event === 'chat_message_sent').length === uuids.length, { timeoutMs: 10_000 });
    await settled();
    const sizes = capture.requests.filter((r) => r.status === 200).map((r) => r.events);
    // 20 + 1 (the next pack of 20 would go over 30), 20, 45 alone (a pack is never split), then the identifies.
    expect(sizes.slice(0, 3)).toEqual([21, 20, 45]);
    expect(
      capture.events
        .filter((e) => e.event === 'chat_message_sent')
        .map((e) => e.uuid)
        .sort(),
    ).toEqual([...uuids].sort());
    expect(capture.duplicates()).toEqual([]);
  });

  it('two workers draining 200 packs of five at once: every event exactly once', async () => {
    const uuids: string[] = [];
    for (let i = 0; i < 200; i++)
      uuids.push(
        ...(await record(
          db.sql,
          [0, 1, 2, 3, 4].map((k) => chat(`u${i % 7}`, 5 * i + k)),
        )),
      );
    await Promise.all([start({ batchSize: 40, concurrency: 2 }), start({ batchSize: 40, concurrency: 2 })]);
    await capture.waitFor((events) => events.filter((e) => e.event === 'chat_message_sent').length >= uuids.length, { timeoutMs: 20_000 });
    await settled();
    expect(
      capture.events
        .filter((e) => e.event === 'chat_message_sent')
        .map((e) => e.uuid)
        .sort(),
    ).toEqual([...uuids].sort());
    expect(capture.duplicates()).toEqual([]);
  });
});
