/**
 * Recovering from a long outage. Each failed pass had tried the oldest rows never tried, so the rows that failed
 * lead the outbox in uuid order, ahead of every row never tried. Once PostHog accepts again they are all due,
 * and a run's claims must not walk them again and again looking for rows never tried (the start of claimBatch's
 * scan: worker/claim/rows.ts nextClaimStart): 400,000 such rows took 13.2 s of claims, against 3.5 s.
 */
import { expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { inProcessWorkers, outboxCount, until, type WorkerFixture } from '../support/worker.ts';

let fixture: WorkerFixture;
const start = inProcessWorkers('phc_recovery', (f) => (fixture = f));

/** Rows of the outbox read by scans so far (heap rows fetched through an index, rows of sequential scans), as the statistics say. */
async function outboxRowsRead(): Promise<number> {
  const { sql } = fixture.db;
  await sql`SELECT pg_stat_clear_snapshot()`;
  const [row] = await sql<{ n: string }[]>`SELECT (coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0))::text AS n
    FROM pg_stat_user_tables WHERE relid = 'posthog_outbox.outbox'::regclass`;
  return Number(row!.n);
}

it('20,000 failed rows due again and none never tried: every one delivered once, each read a bounded number of times', async () => {
  // A quiet application (or a long outage): every row it wrote was tried during the outage. Rows never tried
  // behind the failed ones would move the claims' start past them at the first claim; with none, only
  // nextClaimStart's "the scan reached the end" does.
  const FAILED = 20_000;
  const { sql } = fixture.db;
  // No user or organization: nothing to re-identify, so only these rows go out.
  await sql.unsafe(`INSERT INTO posthog_outbox.outbox (uuid, event, distinct_id, properties, groups, timestamp, attempts, next_attempt_at, last_error)
    SELECT uuidv7(), 'tool_called', 'anon_' || (i % 100), jsonb_build_object('i', i), '{}', now(), 1 + i % 5, now() - interval '1 second', 'HTTP 503'
    FROM generate_series(1, ${FAILED}) AS i`);
  await sql`ANALYZE posthog_outbox.outbox`;
  const uuids = (await sql<{ uuid: string }[]>`SELECT uuid FROM posthog_outbox.outbox`).map((r) => r.uuid);
  const before = await outboxRowsRead();

  const worker = await start({ batchSize: 250, safetyNetCron: '0 0 1 1 *' });
  // (watched at the endpoint: counting the outbox's rows would read them too)
  await fixture.capture.waitFor(FAILED, { timeoutMs: 120_000 });
  await worker.stop(5_000);
  // Its connections are closed: each backend sends its statistics as it exits. Read once they stop moving.
  let last = -1;
  const read =
    (await until(
      async () => {
        const now = await outboxRowsRead();
        const settled = now === last && now - before >= FAILED;
        last = now;
        if (!settled) await new Promise((r) => setTimeout(r, 250));
        return settled ? now : -1;
      },
      (n) => n >= 0,
      { what: 'the statistics of the worker to arrive', timeoutMs: 60_000 },
    )) - before;

  expect(await outboxCount(sql)).toBe(0);
  const delivered = fixture.capture.events.map((e) => e.uuid);
  expect(delivered).toHaveLength(FAILED);
  const digest = (list: string[]) =>
    createHash('sha256')
      .update([...list].sort().join())
      .digest('hex');
  expect(digest(delivered as string[])).toBe(digest(uuids));
  // Each row is read by a claim (from the retry index) and by its delete, and walked past by the first claim of
  // each lane of each run: ~6 reads a row. Walking them at every claim (80 claims of 250) read ~46 a row.
  console.log(`recovery: ${read} outbox rows read to deliver ${FAILED} (${(read / FAILED).toFixed(1)} a row)`);
  expect(read).toBeLessThan(FAILED * 12);
}, 180_000);
