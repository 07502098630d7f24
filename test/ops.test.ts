/**
 * `posthog-outbox/ops`: the operator's operations as library functions, called as an application's admin
 * endpoint would (no child process), against real PostgreSQL.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { attributedEvent, record } from '../src/index.ts';
import { OutboxError } from '../src/errors/errors.ts';
import {
  forget,
  listDeadLetters,
  purgeDeadLetters,
  countDeadLettersBefore,
  readStatus,
  retryAllDeadLetters,
  retryDeadLetters,
  withConnection,
} from '../src/ops/index.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { queuedEvents } from './support/queued.ts';
import { until } from './support/worker.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => db.drop());
beforeEach(async () => {
  await db.sql`TRUNCATE posthog_outbox.outbox, posthog_outbox.dead_letters, posthog_outbox.identities`;
});

const context = (user: string) => ({ organization: { id: 'org_1', name: 'Acme' }, user: { id: user, email: `${user}@example.com` } });
/** `n` events, each recorded on its own (a row each, which the tests below change by uuid). */
async function events(n: number, user = 'u1'): Promise<string[]> {
  const uuids: string[] = [];
  for (let i = 0; i < n; i++) uuids.push(...(await record(db.sql, attributedEvent(context(user), 'chat_started', { i }))));
  return uuids;
}
async function kill(uuids: string[], diedAt = new Date()): Promise<void> {
  await db.sql`
    WITH dead AS (DELETE FROM posthog_outbox.outbox WHERE uuid = ANY(${uuids}::uuid[]) RETURNING *)
    INSERT INTO posthog_outbox.dead_letters (uuid, event, distinct_id, properties, groups, timestamp, user_id, user_profile, attempts, created_at, reason, died_at)
    SELECT uuid, event, distinct_id, properties, groups, timestamp, user_id, user_profile, 1, created_at, 'PostHog refused it', ${diedAt} FROM dead`;
}

describe('posthog-outbox/ops', () => {
  it('withConnection opens a connection for the work, closes it after (also when the work throws), and names an unreachable server', async () => {
    const status = await withConnection(db.url, (sql) => readStatus(sql, { limit: 5 }));
    expect(status).toMatchObject({ backlog: 0, deadLetters: 0, target: null, profiles: { known: 0, oldestSentAt: null } });
    await expect(withConnection(db.url, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    const open = await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ${db.name} AND pid <> pg_backend_pid()`;
    expect(open[0]!.n).toBeLessThanOrEqual(10); // only the test's own pool, none left behind by withConnection
    await expect(withConnection('postgres://nobody:secret@127.0.0.1:9/x', async () => 1)).rejects.toThrow(
      /cannot reach the database at postgres:\/\/nobody:\*\*\*@127\.0\.0\.1:9\/x/,
    );
  });

  it('readStatus counts the backlog, the retrying rows and the dead letters', async () => {
    const uuids = await events(6);
    await db.sql`UPDATE posthog_outbox.outbox SET attempts = 1, next_attempt_at = now() + interval '1 hour', last_error = '503' WHERE uuid = ${uuids[0]!}`;
    await kill([uuids[1]!]);
    const status = await readStatus(db.sql, { limit: 5 });
    expect(status).toMatchObject({ backlog: 5, due: 4, retrying: 1, deadLetters: 1, deadLettersByReason: [{ reason: 'PostHog refused it', count: 1 }] });
    expect(status.retryingRows.map((r) => [r.uuid, r.lastError])).toEqual([[uuids[0], '503']]);
  });

  it('dead letters: list, retry some (all or nothing), retry all in batches with progress, purge by date', async () => {
    const uuids = await events(25);
    await kill(uuids.slice(0, 5), new Date('2026-01-01T00:00:00Z'));
    await kill(uuids.slice(5));
    expect((await listDeadLetters(db.sql, { limit: 100 })).map((d) => d.uuid).sort()).toEqual([...uuids].sort());

    const refused = await retryDeadLetters(db.sql, [uuids[0]!, '00000000-0000-7000-8000-000000000000']).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OutboxError);
    expect((refused as OutboxError).field).toBe('ids');
    expect(await listDeadLetters(db.sql, { limit: 100 })).toHaveLength(25); // nothing moved
    expect(await retryDeadLetters(db.sql, [uuids[0]!.toUpperCase()])).toBe(1);

    expect(await countDeadLettersBefore(db.sql, new Date('2026-06-01T00:00:00Z'))).toBe(4);
    expect(await purgeDeadLetters(db.sql, new Date('2026-06-01T00:00:00Z'))).toBe(4);

    const progress: { done: number; total: number; queued: number }[] = [];
    expect(await retryAllDeadLetters(db.sql, { batchSize: 7, onProgress: (p) => progress.push(p) })).toBe(20);
    expect(progress.map((p) => p.done)).toEqual([7, 14, 20]);
    expect(progress.every((p) => p.total === 20)).toBe(true);
    expect((await readStatus(db.sql)).backlog).toBe(21);
  });

  it('forget deletes what the outbox holds about a user, in one transaction; bad input throws before any SQL', async () => {
    await events(3, 'gone');
    const [kept] = await events(1, 'stays');
    const dead = await events(2, 'gone');
    await kill(dead);
    expect(await forget(db.sql, [{ kind: 'user', id: 'gone' }])).toEqual([{ kind: 'user', id: 'gone', queued: 3, deadLetters: 2, profile: false }]);
    expect((await db.sql`SELECT uuid FROM posthog_outbox.outbox`).map((r) => r.uuid)).toEqual([kept]);
    // Events of several users recorded in one call share a row (a pack): only the user's own leave it.
    await db.sql`TRUNCATE posthog_outbox.outbox`;
    const mixed = await record(db.sql, [attributedEvent(context('gone'), 'a'), attributedEvent(context('stays'), 'b'), attributedEvent(context('gone'), 'c')]);
    const alone = await record(db.sql, [attributedEvent(context('gone'), 'd'), attributedEvent(context('gone'), 'e')]);
    expect(await readStatus(db.sql)).toMatchObject({ backlog: 5 });
    expect(await forget(db.sql, [{ kind: 'user', id: 'gone' }])).toEqual([{ kind: 'user', id: 'gone', queued: 4, deadLetters: 0, profile: false }]);
    expect((await queuedEvents(db.sql)).map((e) => [e.uuid, e.event, e.distinctId])).toEqual([[mixed[1], 'b', 'stays']]);
    expect(alone).toHaveLength(2);
    expect(await readStatus(db.sql)).toMatchObject({ backlog: 1 });
    for (const [targets, field] of [
      [[], 'targets'],
      [[{ kind: 'user', id: ' ' }], 'targets[0].id'],
      [[{ kind: 'person', id: 'x' }], 'targets[0].kind'],
    ] as const) {
      const error = await forget(db.sql, targets as never).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OutboxError);
      expect((error as OutboxError).field).toBe(field);
    }
  });

  it('forget while a worker holds a pack and splits it: the events the worker wrote back as rows are forgotten too', async () => {
    const [, kept] = await record(db.sql, [attributedEvent(context('gone'), 'a'), attributedEvent(context('stays'), 'b')]);
    const worker = await db.sql.reserve();
    try {
      // The worker's batch: the pack claimed, then split (its events' fates differ) and retried, then committed.
      await worker`BEGIN`;
      await worker`SELECT uuid FROM posthog_outbox.outbox FOR UPDATE SKIP LOCKED`;
      const forgetting = forget(db.sql, [{ kind: 'user', id: 'gone' }]);
      await until(
        () => db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ${db.name} AND wait_event_type = 'Lock'`,
        ([blocked]) => blocked!.n > 0,
        { what: 'forget to wait for the worker’s lock', timeoutMs: 10_000 },
      );
      await worker`UPDATE posthog_outbox.outbox SET attempts = attempts + 1, next_attempt_at = now() + interval '1 minute'`;
      await worker`COMMIT`;
      expect(await forgetting).toEqual([{ kind: 'user', id: 'gone', queued: 1, deadLetters: 0, profile: false }]);
      expect((await queuedEvents(db.sql)).map((e) => [e.uuid, e.event, e.attempts])).toEqual([[kept, 'b', 1]]);
    } finally {
      await worker`ROLLBACK`.catch(() => undefined);
      worker.release();
    }
  });
});
