/**
 * `forget` against two real workers settling batches of the same person: each worker's batch transaction
 * locks the person's outbox rows (the claim) and then their `identities` row (re-identification, when their
 * profile changed). forget takes its locks in the same order, so it never deadlocks with them: every erasure
 * succeeds at its first attempt (no retry allowed here), while the workers keep delivering.
 */
import { expect, it } from 'vitest';
import { attributedEvent, record } from '../src/index.ts';
import { forget } from '../src/ops/index.ts';
import { inProcessWorkers, until, type WorkerFixture } from './support/worker.ts';

let fixture: WorkerFixture;
// Short runs and small batches: re-identification (the identities lock) happens at the start of every run.
const start = inProcessWorkers('phc_forget', (f) => (fixture = f), { concurrency: 2, batchSize: 20, maxPassMs: 50 });

/** Events of the person to forget and of others, each with a changed profile (so settling them re-identifies). */
async function burst(from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i += 20) {
    const events = Array.from({ length: 20 }, (_, k) => {
      const n = i + k;
      const user = n % 2 === 0 ? 'gone' : `stays_${n % 5}`;
      return attributedEvent(
        { organization: { id: 'org_1', name: `Acme ${n}` }, user: { id: user, email: `${user}@example.com`, name: `Name ${n}` } },
        'chat_message_sent',
        { n },
      );
    });
    await record(fixture.db.sql, events);
  }
}

it('two workers settling the same person and organization while forget erases both ten times: no deadlock, every erasure at its first attempt', async () => {
  const { sql } = fixture.db;
  await burst(0, 2_000);
  // PostHog answers each request after 200 ms: batches stay in flight (their rows locked) while forget runs
  fixture.capture.delayNext(10_000, 200);
  await Promise.all([start(), start()]);
  for (let round = 0; round < 10; round++) {
    // wait until the workers are settling again, then erase in the middle of it
    await until(
      () =>
        sql<
          { n: number }[]
        >`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'posthog-outbox worker' AND state = 'idle in transaction'`,
      ([row]) => row!.n > 0,
      { what: 'a batch in flight', timeoutMs: 10_000 },
    );
    // an erasure of a person and their organization (the worker locks identities organization first, then user)
    const forgotten = await forget(
      sql,
      [
        { kind: 'user', id: 'gone' },
        { kind: 'organization', id: 'org_1' },
      ],
      { attempts: 1 },
    );
    expect(forgotten.map((f) => f.id)).toEqual(['gone', 'org_1']);
    await burst(10_000 * (round + 1), 200);
  }
  await forget(sql, [{ kind: 'user', id: 'gone' }], { attempts: 1 });
  // whatever the workers settle after the last erasure is theirs to re-identify; nothing of the person is queued
  const [left] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM posthog_outbox.outbox WHERE user_id = 'gone' OR distinct_id = 'gone'`;
  expect(left!.n).toBe(0);
  expect(fixture.capture.duplicates()).toEqual([]);
}, 120_000);
