/**
 * Vacuum of the outbox, a high-churn queue table: the baseline migration sets its autovacuum storage parameters
 * (checked after every migrate, in any schema). The 1M-event drain that docs/hosted-postgres.md (Autovacuum) describes
 * runs only when asked (`VACUUM_1M=1`, a few minutes): it records a million events, drains them through a
 * real worker to the capture server, and prints the table and index sizes along the way;
 * `VACUUM_1M=defaults` does the same with PostgreSQL's default autovacuum settings, for comparison.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCaptureServer } from '../../dev/capture-server.ts';
import { migrateOutbox } from '../../src/outbox/apply.ts';
import { startWorker } from '../../worker/index.ts';
import type { TestDatabase } from '../support/db.ts';
import { createWorkerDatabase, outboxCount, until } from '../support/worker.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createWorkerDatabase();
});
afterAll(async () => {
  await db?.drop();
});

const EXPECTED = [
  'autovacuum_analyze_scale_factor=0.02',
  'autovacuum_vacuum_cost_limit=1000',
  'autovacuum_vacuum_scale_factor=0.01',
  'autovacuum_vacuum_threshold=1000',
];

async function reloptions(schema: string, table: string): Promise<string[]> {
  const [row] = await db.sql<{ options: string[] | null }[]>`
    SELECT c.reloptions AS options FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ${schema} AND c.relname = ${table}`;
  return [...(row?.options ?? [])].sort();
}

it('after migrate the outbox carries the migration autovacuum settings, in another schema too', async () => {
  expect(await reloptions('posthog_outbox', 'outbox')).toEqual(EXPECTED);
  await migrateOutbox(db.sql, { schema: 'vacuum_other' });
  expect(await reloptions('vacuum_other', 'outbox')).toEqual(EXPECTED);
  expect(await reloptions('posthog_outbox', 'dead_letters')).toEqual([]); // low churn: PostgreSQL's defaults
});

/** Heap, primary key (what the claim reads), and retry index (rows that failed) of the outbox, in MB, with the dead tuples and vacuum count. */
async function sizes() {
  const [row] = await db.sql<{ heap: number; retry_idx: number; pkey: number; dead: number; autovacuums: number }[]>`
    SELECT round(pg_relation_size('posthog_outbox.outbox') / 1048576.0, 1)::float8 AS heap,
      round(pg_relation_size('posthog_outbox.outbox_retry_idx') / 1048576.0, 1)::float8 AS retry_idx,
      round(pg_relation_size('posthog_outbox.outbox_pkey') / 1048576.0, 1)::float8 AS pkey,
      (SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = 'posthog_outbox.outbox'::regclass)::int AS dead,
      (SELECT autovacuum_count FROM pg_stat_user_tables WHERE relid = 'posthog_outbox.outbox'::regclass)::int AS autovacuums`;
  return row!;
}

describe.skipIf(!process.env.VACUUM_1M)('a 1M-event drain (VACUUM_1M=1)', () => {
  it('table and index sizes: queued, drained, and after the next autovacuum', async () => {
    const defaults = process.env.VACUUM_1M === 'defaults';
    if (defaults)
      await db.sql`ALTER TABLE posthog_outbox.outbox RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold, autovacuum_vacuum_cost_limit, autovacuum_analyze_scale_factor)`;
    const capture = await startCaptureServer({ apiKey: 'phc_vacuum', keepEvents: false });
    // A million chat-sized events, as record() writes them (properties, groups, a user profile snapshot).
    // Each with its own write time (as a million commits would have), so the index holds distinct keys.
    await db.sql.unsafe(`INSERT INTO posthog_outbox.outbox (uuid, event, distinct_id, properties, groups, timestamp, user_id, user_profile, organization_id, created_at, next_attempt_at)
      SELECT uuidv7(), 'tool_called', 'user_' || (i % 1000), jsonb_build_object('seq', i, 'tool_name', 'search', 'thread_id', md5(i::text), '$groups', jsonb_build_object('organization', 'org_1')),
        '{"organization":"org_1"}', t, 'user_' || (i % 1000), jsonb_build_object('email', 'u' || (i % 1000) || '@example.com'), 'org_1', t, t
      FROM generate_series(1, 1000000) AS i, LATERAL (SELECT now() - interval '10 minutes' + i * interval '500 microseconds' AS t) AS w`);
    const queued = await sizes();
    const started = Date.now();
    const worker = await startWorker({ databaseUrl: db.url, posthog: { apiKey: 'phc_vacuum', host: capture.url } });
    const during: number[] = [];
    try {
      while ((await outboxCount(db.sql)) > 0) {
        if (Date.now() - started > 900_000) throw new Error('the drain took longer than 15 minutes');
        during.push((await sizes()).pkey);
        await new Promise((r) => setTimeout(r, 1_000));
      }
    } finally {
      await worker.stop(10_000);
      await capture.close();
    }
    const drainSeconds = Math.round((Date.now() - started) / 1000);
    const drained = await sizes();
    // The next autovacuum of the emptied table (naptime 1 min by default).
    const vacuumed = await until(sizes, (s) => s.autovacuums > drained.autovacuums || s.dead === 0, {
      timeoutMs: 180_000,
      what: 'an autovacuum after the drain',
    });
    console.log(
      JSON.stringify({
        settings: defaults ? 'PostgreSQL defaults' : 'migration',
        drainSeconds,
        queued,
        drained,
        vacuumed,
        claimIndexPeakMb: Math.max(...during),
      }),
    );
    expect(vacuumed.dead).toBe(0);
  }, 1_200_000);
});
