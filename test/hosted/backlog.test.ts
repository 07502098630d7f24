/**
 * Big backlogs stay cheap to watch and to steer: with a million queued events a `/metrics` scrape reads a
 * bounded number of rows (a capped count, then the planner's estimate, and says so), and
 * `dead-letters retry --all` moves a million dead letters (`npm run soak`; 100,000 in `npm test`) in bounded
 * transactions with progress on stderr.
 * Rows are generated in one INSERT ... SELECT generate_series each.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startCaptureServer, type CaptureServer } from '../../dev/capture-server.ts';
import { COUNT_CAP } from '../../worker/health/metrics.ts';
import { startWorker } from '../../worker/index.ts';
import { runCli } from '../support/cli.ts';
import type { TestDatabase } from '../support/db.ts';
import { SOAK } from '../support/soak.ts';
import { createWorkerDatabase, until } from '../support/worker.ts';

const MILLION = 1_000_000;
let db: TestDatabase;
let capture: CaptureServer;

beforeAll(async () => {
  db = await createWorkerDatabase();
  capture = await startCaptureServer({ apiKey: 'phc_backlog' });
});
afterAll(async () => {
  await capture?.close();
  await db?.drop();
});
beforeEach(async () => {
  await db.sql`TRUNCATE posthog_outbox.outbox, posthog_outbox.dead_letters`;
});

/** `n` rows for `table`, in uuid (UUIDv7) order; the first was recorded an hour ago. */
function generate(table: 'outbox' | 'dead_letters', n: number) {
  const extra = table === 'outbox' ? `, "next_attempt_at"` : `, "reason"`;
  const extraValue = table === 'outbox' ? `, now() + interval '1 day'` : `, 'HTTP 400 (test)'`;
  return db.sql.unsafe(`INSERT INTO posthog_outbox."${table}" ("uuid", "event", "distinct_id", "properties", "groups", "timestamp", "user_id", "created_at"${extra})
    SELECT uuidv7(), 'tool_called', 'user_' || (i % 1000), jsonb_build_object('seq', i), '{}', now(), 'user_' || (i % 1000),
      CASE WHEN i = 1 THEN now() - interval '1 hour' ELSE now() END${extraValue}
    FROM generate_series(1, ${n}) AS i`);
}

/**
 * Rows of the outbox read by scans so far, as the statistics say: sequential scans' rows plus the entries
 * read from its indexes (an index-only scan, which a vacuumed table allows, fetches no heap tuple at all).
 */
async function outboxTuplesRead(): Promise<number> {
  await db.sql`SELECT pg_stat_clear_snapshot()`;
  const [row] = await db.sql<{ n: string }[]>`
    SELECT (coalesce(t.seq_tup_read, 0) + coalesce((SELECT sum(i.idx_tup_read) FROM pg_stat_user_indexes i WHERE i.relid = t.relid), 0))::bigint AS n
    FROM pg_stat_user_tables t WHERE t.relid = 'posthog_outbox.outbox'::regclass`;
  return Number(row!.n);
}

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`no ${name} in\n${text}`);
  return Number(line.split(' ').at(-1));
}

describe('a million queued events', () => {
  it("/metrics reads a bounded number of rows: the backlog is the planner's estimate above the cap, and says so", async () => {
    await generate('outbox', MILLION);
    await db.sql`ANALYZE posthog_outbox.outbox`;
    // The rows are held a day away (never tried, so the idle probe's one lookup says so, and the starting worker
    // claims nothing); the minutely safety-net run, whose claim would walk them all, is kept out of the scrape.
    const worker = await startWorker({
      databaseUrl: db.url,
      posthog: { apiKey: 'phc_backlog', host: capture.url },
      metrics: { port: 0, host: '127.0.0.1' },
      safetyNetCron: '0 0 1 1 *',
    });
    try {
      await new Promise((r) => setTimeout(r, 1_500)); // the start-up's own reads reach the statistics
      const before = await outboxTuplesRead();
      const text = await (await fetch(`${worker.healthUrl}/metrics`)).text();
      // An idle backend may hold its statistics back for up to a minute when the shared entry is busy; one
      // that exits reports them at once. So the worker stops (its connections close) before they are read.
      await worker.stop(5_000);
      await until(
        async () => (await outboxTuplesRead()) - before,
        (n) => n >= COUNT_CAP,
        { what: "the scrape's reads to reach the statistics", timeoutMs: 20_000 },
      ); // the capped count did run
      const read = (await outboxTuplesRead()) - before;

      expect(read).toBeLessThan(COUNT_CAP * 3); // and nothing like a full count (1,000,000)
      expect(Math.abs(metric(text, 'posthog_outbox_backlog') - MILLION)).toBeLessThan(MILLION * 0.05);
      expect(metric(text, 'posthog_outbox_backlog_exact')).toBe(0);
      expect(text).toMatch(
        /# HELP posthog_outbox_backlog Events waiting in the outbox: an exact count while the outbox holds fewer than 10000 rows, above it PostgreSQL's planner estimate of its rows/,
      );
      expect(metric(text, 'posthog_outbox_oldest_event_age_seconds')).toBeGreaterThanOrEqual(3_600);
      expect(metric(text, 'posthog_outbox_oldest_event_age_seconds')).toBeLessThan(3_700);
      expect(metric(text, 'posthog_outbox_dead_letters')).toBe(0);
      expect(metric(text, 'posthog_outbox_dead_letters_exact')).toBe(1);
    } finally {
      await worker.stop(5_000);
    }
  }, 180_000);

  /** A million dead letters under `npm run soak`; `npm test` moves 100,000 in batches of 5,000 (as many batches, 20). */
  const DEAD = SOAK ? { rows: MILLION, batch: 50_000 } : { rows: 100_000, batch: 5_000 };

  it(`dead-letters retry --all moves ${DEAD.rows} dead letters in bounded transactions, with progress on stderr`, async () => {
    await generate('dead_letters', DEAD.rows);
    const run = runCli(['dead-letters', 'retry', '--all', '--batch-size', String(DEAD.batch)], { env: { DATABASE_URL: db.url }, timeoutMs: 240_000 });
    // Other sessions see it advance batch by batch: it is not one million-row statement.
    const partial = await until(
      async () => (await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM posthog_outbox.outbox`)[0]!.n,
      (n) => n > 0,
      { timeoutMs: 120_000, what: 'the first batch to commit' },
    );
    expect(partial).toBeLessThan(DEAD.rows);
    expect(partial % DEAD.batch).toBe(0);
    const result = await run;
    expect(result.stderr).toMatch(new RegExp(`retry --all: ${DEAD.rows} of ${DEAD.rows} dead letter\\(s\\) done, ${DEAD.rows} queued again\n$`));
    expect(result.stdout).toBe(`moved ${DEAD.rows} dead letter(s) back to the outbox\n`);
    expect(result.code).toBe(0);
    const [counts] = await db.sql<{ queued: number; dead: number; due: number }[]>`
      SELECT (SELECT count(*) FROM posthog_outbox.outbox)::int AS queued, (SELECT count(*) FROM posthog_outbox.dead_letters)::int AS dead,
        (SELECT count(*) FROM posthog_outbox.outbox WHERE attempts = 0 AND next_attempt_at <= now())::int AS due`;
    expect(counts).toEqual({ queued: DEAD.rows, dead: 0, due: DEAD.rows });
  }, 300_000);
});
