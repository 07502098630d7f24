/** Helpers for worker tests: a migrated database with pg-boss, and polling until the outbox is settled. */
import type postgres from 'postgres';
import { installPgBoss } from '../../worker/queue.ts';
import { createTestDatabase, type TestDatabase } from './db.ts';

export async function createWorkerDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase();
  await installPgBoss(db.url, 'posthog_outbox');
  return db;
}

export async function until<T>(probe: () => Promise<T> | T, done: (value: T) => boolean, { timeoutMs = 20_000, what = 'condition' } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await probe();
  while (!done(value)) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last value: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 25));
    value = await probe();
  }
  return value;
}

export async function outboxCount(sql: postgres.Sql): Promise<number> {
  const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM posthog_outbox.outbox`;
  return row!.n;
}

export async function deadLetterRows(sql: postgres.Sql) {
  return sql<{ uuid: string; event: string; reason: string; attempts: number }[]>`
    SELECT uuid, event, reason, attempts FROM posthog_outbox.dead_letters ORDER BY event`;
}

/** Outbox rows a worker holds right now: those this check cannot lock (a claim is a row lock in the worker's transaction). */
export function heldRows(sql: postgres.Sql): Promise<number> {
  return sql.begin(async (tx) => {
    const [row] = await tx<{ n: number }[]>`
      SELECT ((SELECT count(*) FROM posthog_outbox.outbox) - (SELECT count(*) FROM (SELECT 1 FROM posthog_outbox.outbox FOR KEY SHARE SKIP LOCKED) AS free))::int AS n`;
    return row!.n;
  });
}
