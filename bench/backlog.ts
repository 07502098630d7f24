/**
 * Pre-filled backlogs: the outbox (a row per event, as `record()` writes them, from the templates, one INSERT ... SELECT
 * over generate_series per chunk) and pg-boss jobs (one job per event, for the job-per-event design).
 * Every fill starts from an empty, freshly vacuumed table, so every design drains the same starting state.
 */
import type { PgBoss } from 'pg-boss';
import type postgres from 'postgres';
import { PGBOSS_SCHEMA } from '../src/outbox/queue.ts';
import { JOBS_QUEUE } from './designs/job-queue.ts';
import { TEMPLATES, wireEvents } from './events.ts';

const CHUNK = 250_000;

/**
 * Empties the outbox and fills it with `count` events: template `i % TEMPLATES` plus `bench_seq: i`, a UUIDv7,
 * and created / due / event times spread one millisecond apart over the time before now, as a backlog that
 * built up during an outage would be, a row each as `record()` writes them. Ends with VACUUM ANALYZE (what
 * autovacuum would have done by then).
 */
export async function fillOutbox(sql: postgres.Sql, count: number): Promise<void> {
  await sql`TRUNCATE posthog_outbox.outbox`;
  const properties = `t.properties || jsonb_build_object('bench_seq', i)`;
  const columns = `"event", "distinct_id", "properties", "groups", "timestamp", "user_id", "user_profile", "automation_id", "automation_profile", "organization_id", "organization_profile"`;
  const values = `t.event, t.distinct_id, ${properties}, t.groups, at, t.user_id, t.user_profile, t.automation_id, t.automation_profile, t.organization_id, t.organization_profile`;
  for (let from = 0; from < count; from += CHUNK) {
    const to = Math.min(count, from + CHUNK) - 1;
    await sql.unsafe(
      `INSERT INTO posthog_outbox.outbox ("uuid", ${columns}, "created_at", "next_attempt_at")
       SELECT uuidv7(), ${values}, at, at
       FROM generate_series($1::int, $2::int) AS i
       CROSS JOIN LATERAL (SELECT now() - make_interval(secs => ($3::int - i) / 1000.0) AS at) AS times
       JOIN bench.templates t ON t.k = i % ${TEMPLATES}`,
      [from, to, count],
    );
  }
  await sql`VACUUM ANALYZE posthog_outbox.outbox`;
}

export async function outboxCount(sql: postgres.Sql): Promise<number> {
  const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM posthog_outbox.outbox`;
  return row!.n;
}

/** A fresh pg-boss queue holding `count` jobs, one per event (the event as the job's data). */
export async function fillJobs(boss: PgBoss, sql: postgres.Sql, count: number, queue = JOBS_QUEUE): Promise<void> {
  if (await boss.getQueue(queue)) await boss.deleteQueue(queue);
  await boss.createQueue(queue, { retryLimit: 0 });
  const events = wireEvents(count);
  const chunk = 5_000;
  for (let from = 0; from < count; from += chunk) {
    await boss.insert(
      queue,
      events.slice(from, from + chunk).map((data) => ({ data })),
    );
  }
  await sql.unsafe(`VACUUM ANALYZE ${PGBOSS_SCHEMA}.job`);
}
