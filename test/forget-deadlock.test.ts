/**
 * `forget` racing a worker that settles a batch of the same person. A worker's batch transaction locks its
 * outbox rows first (the claim) and `identities` rows after (re-identification), in (kind, entity_id)
 * order; forget must take its locks in that order too, or the two deadlock (40P01) and the erasure is rolled
 * back. Real concurrent transactions on real PostgreSQL: the "worker" here is a transaction that does what a
 * worker's batch does, statement for statement, so these tests hold whatever the rows' encoding.
 * And an application that locks in the other order (its own transaction, identities first) still can
 * deadlock with forget: forget then retries its whole transaction, a bounded number of times.
 */
import postgres from 'postgres';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OutboxError } from '../src/errors/errors.ts';
import { attributedEvent, record } from '../src/index.ts';
import { forget } from '../src/ops/index.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { until } from './support/worker.ts';

const FORGET_APP = 'forget-under-test';

let db: TestDatabase;
/** forget's own client: its session is found in pg_stat_activity by its application name. */
let forgetSql: postgres.Sql;
beforeAll(async () => {
  db = await createTestDatabase();
  forgetSql = postgres(db.url, { max: 1, onnotice: () => {}, connection: { application_name: FORGET_APP } });
});
afterAll(async () => {
  await forgetSql?.end({ timeout: 5 });
  await db?.drop();
});
beforeEach(async () => {
  await db.sql`TRUNCATE posthog_outbox.outbox, posthog_outbox.dead_letters, posthog_outbox.identities`;
});

const context = { organization: { id: 'org_1', name: 'Acme' }, user: { id: 'gone', email: 'gone@example.com' } };
const recordEvent = (name = 'chat_started') => record(db.sql, attributedEvent(context, name));

async function remembered(): Promise<void> {
  await db.sql`INSERT INTO posthog_outbox.identities (kind, entity_id, fields, event_at, sent_at, version)
    VALUES ('organization', 'org_1', '{"name":"Acme"}', now(), now(), 1), ('user', 'gone', '{"email":"gone@example.com"}', now(), now(), 1)`;
}

/** forget's backend, and the backends it waits for (empty while it waits for none). */
async function forgetWaits(): Promise<{ pid: number; blockers: number[] } | undefined> {
  const [row] = await db.sql<{ pid: number; blockers: number[] }[]>`
    SELECT pid, pg_blocking_pids(pid) AS blockers FROM pg_stat_activity WHERE application_name = ${FORGET_APP} AND datname = ${db.name}`;
  return row;
}
const waitsFor = (pid: number, what: string) => until(forgetWaits, (w) => w?.blockers.includes(pid) ?? false, { what, timeoutMs: 10_000 });

/** A transaction of its own on a reserved connection, like a worker lane's batch. */
async function transaction(): Promise<{ q: postgres.ReservedSql; pid: number; done(): Promise<void> }> {
  const q = await db.sql.reserve();
  await q`BEGIN`;
  const [{ pid }] = (await q`SELECT pg_backend_pid() AS pid`) as unknown as [{ pid: number }];
  return {
    q,
    pid,
    async done() {
      await q`ROLLBACK`.catch(() => undefined); // (a no-op warning after COMMIT)
      q.release();
    },
  };
}

/** The worker's batch statements, in its order: claim (rows locked), then settle: re-identify in (kind, entity_id) order, delete what was delivered. */
const worker = {
  claim: (q: postgres.ReservedSql) =>
    q<{ uuid: string }[]>`SELECT uuid FROM posthog_outbox.outbox WHERE next_attempt_at <= now() ORDER BY uuid LIMIT 100 FOR UPDATE SKIP LOCKED`,
  async settle(q: postgres.ReservedSql, claimed: readonly { uuid: string }[]) {
    await q`INSERT INTO posthog_outbox.identities AS i (kind, entity_id, fields, event_at, sent_at, version)
      VALUES ('organization', 'org_1', '{"name":"Acme"}', now(), now(), 1), ('user', 'gone', '{"email":"gone@example.com","plan":"pro"}', now(), now(), 1)
      ON CONFLICT (kind, entity_id) DO UPDATE SET fields = i.fields || EXCLUDED.fields, sent_at = now(), version = i.version + 1`;
    await q`DELETE FROM posthog_outbox.outbox WHERE uuid = ANY(${claimed.map((r) => r.uuid)}::uuid[])`;
  },
};

const left = async () => {
  const [row] = await db.sql<{ queued: number; dead: number; known: number }[]>`
    SELECT (SELECT count(*) FROM posthog_outbox.outbox)::int AS queued, (SELECT count(*) FROM posthog_outbox.dead_letters)::int AS dead,
      (SELECT count(*) FROM posthog_outbox.identities WHERE kind = 'user' AND entity_id = 'gone')::int AS known`;
  return row!;
};

describe('forget and a worker settling a batch of the same user', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('a batch claimed while forget runs, which re-identifies the user while forget waits for its rows: no deadlock, everything erased', async () => {
    await recordEvent();
    await remembered();
    // A dead letter of the user, held by another transaction: forget's first pass waits there, after the
    // outbox and before anything else, so the batch below is claimed at that moment (deterministically).
    await db.sql`INSERT INTO posthog_outbox.dead_letters (uuid, event, distinct_id, properties, groups, timestamp, user_id, attempts, created_at, reason)
      VALUES ('00000000-0000-7000-8000-0000000000d1', 'e', 'gone', '{}', '{}', now(), 'gone', 1, now(), 'PostHog refused it')`;
    const holder = await transaction();
    cleanups.push(holder.done);
    await holder.q`SELECT 1 FROM posthog_outbox.dead_letters FOR UPDATE`;

    const retries: unknown[] = [];
    const forgetting = forget(forgetSql, [{ kind: 'user', id: 'gone' }], { onRetry: (r) => retries.push(r) }).then(
      (result) => ({ result }),
      (error: { code?: string; message?: string }) => ({ error: `${error.code} ${error.message}` }),
    );
    await waitsFor(holder.pid, 'forget to wait for the held dead letter');

    // the user's next event, committed now, and a worker's batch claiming it
    const [fresh] = await recordEvent('chat_continued');
    const batch = await transaction();
    cleanups.push(batch.done);
    const claimed = await worker.claim(batch.q);
    expect(claimed).toHaveLength(1); // the fresh event's row (forget holds the others)
    expect(fresh).toBeDefined();

    await holder.q`COMMIT`;
    await waitsFor(batch.pid, 'forget to wait for the batch’s rows');
    // PostHog accepted the batch: the worker settles it, re-identifying the user, while forget waits for it
    const settled = await worker.settle(batch.q, claimed).then(
      () => 'settled',
      (error: { code?: string }) => `failed: ${error.code}`,
    );
    await batch.q`COMMIT`.catch(() => undefined);

    expect({ settled, forget: await forgetting }).toEqual({
      settled: 'settled',
      forget: { result: [{ kind: 'user', id: 'gone', queued: 1, deadLetters: 1, profile: true }] },
    });
    expect(retries).toEqual([]); // the lock order alone kept them apart
    expect(await left()).toEqual({ queued: 0, dead: 0, known: 0 });
  });

  it('raced by a worker draining the user’s events as they are recorded, round after round: forget succeeds every time, without a retry', async () => {
    const ROUNDS = 25;
    const retries: unknown[] = [];
    const workerErrors: string[] = [];
    let rounds = 0;
    let batches = 0;
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < 3; i++) await recordEvent();
      await db.sql`DELETE FROM posthog_outbox.identities`;
      await remembered();
      let forgotten = false;
      // handlers keep recording the user's events, and a worker keeps claiming and settling them
      const draining = (async () => {
        while (!forgotten) {
          await recordEvent('chat_continued');
          const batch = await db.sql.reserve();
          try {
            await batch`BEGIN`;
            const claimed = await worker.claim(batch);
            if (claimed.length > 0) {
              await worker.settle(batch, claimed);
              batches++;
            }
            await batch`COMMIT`;
          } catch (error) {
            workerErrors.push(`${(error as { code?: string }).code} ${(error as Error).message}`);
            await batch`ROLLBACK`.catch(() => undefined);
          } finally {
            batch.release();
          }
        }
      })();
      try {
        const result = await forget(
          forgetSql,
          [
            { kind: 'user', id: 'gone' },
            { kind: 'organization', id: 'org_1' },
          ],
          { onRetry: (r) => retries.push(r) },
        );
        expect(result.map((r) => r.kind)).toEqual(['user', 'organization']);
        rounds++;
      } finally {
        forgotten = true;
        await draining;
      }
    }
    expect({ rounds, retries, workerErrors }).toEqual({ rounds: ROUNDS, retries: [], workerErrors: [] });
    expect(batches).toBeGreaterThan(0); // the worker did settle batches of the user while forget ran
  }, 120_000);
});

describe('forget deadlocked by an application that locks identities first', () => {
  /**
   * An application transaction locks the user's remembered profile, forget then locks the user's rows and
   * waits for the profile, and the application asks for the rows: a deadlock PostgreSQL breaks by aborting
   * forget (its session detects it first). Resolves once forget was aborted and the application committed.
   */
  async function deadlockForgetOnce<T>(start: () => Promise<T>): Promise<{ forgetting: Promise<T> }> {
    const app = await transaction();
    let forgetting: Promise<T>;
    try {
      // The session that waits first and whose deadlock_timeout (1 s) runs out after the cycle closed detects
      // it and is aborted: forget, since the application's session waits 30 s before it looks.
      await app.q`SET LOCAL deadlock_timeout = '30s'`;
      await app.q`SELECT 1 FROM posthog_outbox.identities WHERE kind = 'user' AND entity_id = 'gone' FOR UPDATE`;
      // forget starts only once the application holds the profile (started earlier, it could finish first)
      forgetting = start();
      forgetting.catch(() => undefined); // (awaited by the test)
      await waitsFor(app.pid, 'forget to wait for the profile the application holds');
      await app.q`SELECT 1 FROM posthog_outbox.outbox FOR UPDATE`;
      await app.q`COMMIT`;
    } finally {
      await app.done();
    }
    return { forgetting: forgetting! };
  }

  it('retries its transaction after the deadlock (40P01) and erases everything; with attempts: 1 it fails and rolls back', async () => {
    await recordEvent();
    await recordEvent();
    await remembered();

    const { forgetting: once } = await deadlockForgetOnce(() => forget(forgetSql, [{ kind: 'user', id: 'gone' }], { attempts: 1 }));
    const error = (await once.catch((e: unknown) => e)) as { code?: string };
    expect(error.code).toBe('40P01');
    expect(await left()).toEqual({ queued: 2, dead: 0, known: 1 }); // rolled back: nothing erased

    const retries: { attempt: number; code: string; retryInMs: number }[] = [];
    const { forgetting: retried } = await deadlockForgetOnce(() => forget(forgetSql, [{ kind: 'user', id: 'gone' }], { onRetry: (r) => retries.push(r) }));
    expect(await retried).toEqual([{ kind: 'user', id: 'gone', queued: 2, deadLetters: 0, profile: true }]);
    expect(retries).toEqual([{ attempt: 1, code: '40P01', retryInMs: expect.any(Number) }]);
    expect(await left()).toEqual({ queued: 0, dead: 0, known: 0 });
  });
});

it('forget refuses a bad number of attempts before any SQL', async () => {
  for (const attempts of [0, 1.5, 101]) {
    const error = await forget(forgetSql, [{ kind: 'user', id: 'gone' }], { attempts }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutboxError);
    expect((error as OutboxError).field).toBe('attempts');
  }
});
