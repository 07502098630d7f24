/**
 * What the console reads and does, as `posthog-outbox/ops` functions against real PostgreSQL: the backlog by
 * event and profiles by kind (adding up to `readStatus` in one snapshot), dead letters found by event, reason
 * and time (without a filter, `listDeadLetters`'s rows), one read whole with its secrets redacted, discarded;
 * PostgreSQL's counters of the outbox tables; the workers pg-boss's registry holds.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startCaptureServer } from '../../dev/capture-server.ts';
import { OutboxError } from '../../src/errors/errors.ts';
import { attributedEvent, record } from '../../src/index.ts';
import {
  discardDeadLetters,
  findDeadLetters,
  inSnapshot,
  listDeadLetters,
  readBacklogByEvent,
  readDeadLetter,
  readDeliveryCounters,
  readProfilesByKind,
  readStatus,
  readWorkers,
} from '../../src/ops/index.ts';
import { redactJson } from '../../src/errors/redact.ts';
import { startWorker } from '../../worker/index.ts';
import type { TestDatabase } from '../support/db.ts';
import { createWorkerDatabase, OUTBOX_TABLES, outboxEmpty, until } from '../support/worker.ts';
import { killEvents, stale } from './seed.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createWorkerDatabase();
});
afterAll(async () => db?.drop());
beforeEach(async () => {
  await db.sql.unsafe(`TRUNCATE ${OUTBOX_TABLES}`);
});

const context = { organization: { id: 'org_1', name: 'Acme' }, user: { id: 'user_1', email: 'ann@example.com' } };
async function recordEach(names: string[], properties: Record<string, unknown> = {}): Promise<string[]> {
  const uuids: string[] = [];
  for (const name of names) uuids.push(...(await record(db.sql, attributedEvent(context, name, properties))));
  return uuids;
}

describe('the status broken down', () => {
  it('the backlog by event name and the profiles by kind add up to readStatus, read in one snapshot', async () => {
    const retrying = await recordEach(['report_exported', 'report_exported', 'chat_started', 'report_exported', 'chat_started', 'automation_run']);
    await db.sql`UPDATE posthog_outbox.outbox SET attempts = 1, next_attempt_at = now() + interval '1 hour' WHERE uuid = ${retrying[0]!}`;
    await db.sql`INSERT INTO posthog_outbox.identities (kind, entity_id, fields, event_at, sent_at) VALUES
      ('user', 'u1', '{}', now(), now() - interval '2 hours'), ('user', 'u2', '{}', now(), now()), ('organization', 'o1', '{}', now(), now() - interval '1 hour')`;
    const { status, backlog, profiles } = await inSnapshot(db.sql, async (sql) => ({
      status: await readStatus(sql),
      backlog: await readBacklogByEvent(sql, { limit: 2 }),
      profiles: await readProfilesByKind(sql),
    }));
    expect(backlog.names).toBe(3);
    expect(backlog.events.map(({ oldestAgeMs: _, ...e }) => e)).toEqual([
      { event: 'report_exported', queued: 3, due: 2, retrying: 1 },
      { event: 'chat_started', queued: 2, due: 2, retrying: 0 },
    ]);
    const all = await readBacklogByEvent(db.sql);
    expect(all.events.reduce((n, e) => n + e.queued, 0)).toBe(status.backlog);
    expect(all.events.reduce((n, e) => n + e.retrying, 0)).toBe(status.retrying);
    expect(profiles.map((p) => [p.kind, p.known])).toEqual([
      ['organization', 1],
      ['user', 2],
    ]);
    expect(profiles.reduce((n, p) => n + p.known, 0)).toBe(status.profiles.known);
    expect(profiles.map((p) => p.oldestSentAt).sort()[0]).toBe(status.profiles.oldestSentAt);
  });

  it('an empty outbox: no names, no kinds', async () => {
    expect(await readBacklogByEvent(db.sql)).toEqual({ events: [], names: 0 });
    expect(await readProfilesByKind(db.sql)).toEqual([]);
  });
});

describe('dead letters one at a time', () => {
  it('found by event, reason (any case) and time; without a filter, the rows listDeadLetters lists', async () => {
    const uuids = await recordEach(['a', 'b', 'a', 'c']);
    await killEvents(db.sql, [uuids[0]!], 'HTTP 400: invalid event', new Date('2026-01-01T00:00:00Z'));
    await killEvents(db.sql, [uuids[1]!], 'HTTP 400: invalid event', new Date('2026-02-01T00:00:00Z'));
    await killEvents(db.sql, [uuids[2]!, uuids[3]!], 'older than --max-age', new Date('2026-03-01T00:00:00Z'));
    const all = await findDeadLetters(db.sql, {}, { limit: 3 });
    expect(all.matched).toBe(4);
    expect(all.deadLetters).toEqual(await listDeadLetters(db.sql, { limit: 3 }));
    const ids = async (filter: Parameters<typeof findDeadLetters>[1]) => (await findDeadLetters(db.sql, filter)).deadLetters.map((d) => d.uuid).sort();
    expect(await ids({ event: 'a' })).toEqual([uuids[0], uuids[2]].sort());
    expect(await ids({ reason: 'INVALID' })).toEqual([uuids[0], uuids[1]].sort());
    expect(await ids({ diedAfter: new Date('2026-02-01T00:00:00Z'), diedBefore: new Date('2026-03-01T00:00:00Z') })).toEqual([uuids[1]]);
    expect(await ids({ event: 'a', reason: 'max-age' })).toEqual([uuids[2]]);
    expect(await findDeadLetters(db.sql, { event: 'nope' })).toEqual({ deadLetters: [], matched: 0 });
    await expect(findDeadLetters(db.sql, {}, { limit: 0 })).rejects.toBeInstanceOf(OutboxError);
  });

  it('one read whole, its secrets redacted; discarded by uuid, counting only those that were dead letters', async () => {
    const [uuid, other] = await recordEach(['report_exported', 'report_exported'], {
      api_key: 'sk_live_abcdefghijklmnop',
      note: 'called with Authorization: Bearer abc.def.ghi',
      nested: { password: 'hunter2 with spaces', $ai_input_tokens: 812 },
    });
    await killEvents(db.sql, [uuid!, other!], 'HTTP 400 token=abcdef123456', new Date());
    const detail = await readDeadLetter(db.sql, uuid!.toUpperCase());
    expect(detail).toMatchObject({ uuid, event: 'report_exported', distinctId: 'user_1', reason: 'HTTP 400 token=[redacted]', userId: 'user_1' });
    expect(detail!.properties).toMatchObject({
      api_key: '[redacted]',
      note: 'called with Authorization: Bearer [redacted]',
      nested: { password: '[redacted]', $ai_input_tokens: 812 },
    });
    expect(JSON.stringify(detail)).not.toMatch(/hunter2|sk_live|abc\.def/);
    expect(detail!.userProfile).toEqual({ email: 'ann@example.com' });
    expect(await readDeadLetter(db.sql, '00000000-0000-7000-8000-000000000000')).toBeNull();
    await expect(readDeadLetter(db.sql, 'nope')).rejects.toMatchObject({ field: 'ids' });

    expect(await discardDeadLetters(db.sql, [uuid!, '00000000-0000-7000-8000-000000000000'])).toBe(1);
    expect((await listDeadLetters(db.sql)).map((d) => d.uuid)).toEqual([other]);
    await expect(discardDeadLetters(db.sql, [])).rejects.toMatchObject({ field: 'ids', code: 'required' });
  });

  it('redactJson leaves the input alone and keys that only look like credentials', () => {
    const input = { credential_id: 'c1', input_tokens: 5, bypass: 'x', session_token: 'abc', list: ['phc_abcdefghijklmnop'] };
    expect(redactJson(input)).toEqual({ credential_id: 'c1', input_tokens: 5, bypass: 'x', session_token: '[redacted]', list: ['[redacted]'] });
    expect(input.session_token).toBe('abc');
  });
});

describe('delivery counters and workers', () => {
  // A database of its own: sessions that wrote to the other one flush their counts up to ~10 s later.
  let own: TestDatabase;
  beforeAll(async () => {
    own = await createWorkerDatabase();
  });
  afterAll(async () => own?.drop());

  it('PostgreSQL counts what a real worker delivered and dead-lettered, and its registry shows the worker', async () => {
    const db = own;
    const before = await readDeliveryCounters(db.sql);
    const capture = await startCaptureServer({ apiKey: 'phc_console_ops' });
    await record(
      db.sql,
      [...Array(9).fill('good'), 'stale'].map((name) => attributedEvent(context, name)),
    );
    await stale(db.sql);
    const worker = await startWorker({ databaseUrl: db.url, posthog: { apiKey: 'phc_console_ops', host: capture.url }, logger: quiet });
    try {
      await outboxEmpty(db.sql);
      const after = await until(
        () => readDeliveryCounters(db.sql),
        (c) => c.deadLettered - before.deadLettered >= 1 && c.outboxDeleted - before.outboxDeleted >= 10 + 2,
        { what: 'the statistics to count the delivery' },
      );
      expect(after.deadLettered - before.deadLettered).toBe(1);
      // 9 events and 2 identify rows (the user, the organization) delivered, 1 dead-lettered
      expect(after.outboxDeleted - before.outboxDeleted - (after.deadLettered - before.deadLettered)).toBe(11);
      expect(after.oldestAgeMs).toBeNull();
      const workers = await readWorkers(db.sql);
      expect(workers.sessions).toBeGreaterThan(0);
      expect(workers.seen).toHaveLength(1);
      expect(workers.seen![0]).toMatchObject({ pid: process.pid, live: true, stoppedAt: null });
    } finally {
      await worker.stop(5_000);
      await capture.close();
    }
    const stopped = await readWorkers(own.sql);
    expect(stopped.seen![0]).toMatchObject({ live: false });
    expect(stopped.seen![0]!.stoppedAt).not.toBeNull();
  });

  it('a schema of another release without pg-boss registry reads as unavailable, not an error', async () => {
    await db.sql`ALTER TABLE pgboss.instance RENAME TO instance_moved`;
    try {
      expect(await readWorkers(db.sql)).toMatchObject({ seen: null, unavailable: expect.stringContaining('pgboss.instance') });
    } finally {
      await db.sql`ALTER TABLE pgboss.instance_moved RENAME TO instance`;
    }
  });
});

const quiet = { info() {}, warn() {}, error() {} };
