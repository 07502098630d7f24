/**
 * A drain run's lanes end together: when one lane's connection is lost mid-batch, the run rejects only after
 * the other lanes have settled the batches they hold, so a run that is over holds no rows and nothing of it
 * runs on behind the worker's back (a stop, or the next run, would not know about it). Real PostgreSQL, real
 * posthog-node, the capture server.
 */
import postgres from 'postgres';
import { expect, it } from 'vitest';
import type { CaptureServer } from '../../dev/capture-server.ts';
import { attributedEvent, record } from '../../src/index.ts';
import { DrainRun } from '../../worker/drain.ts';
import { resolveSettings } from '../../worker/settings.ts';
import type { TestDatabase } from '../support/db.ts';
import { databaseAndCapture, heldRows, outboxCount, until } from '../support/worker.ts';

const KEY = 'phc_lanes';
let db: TestDatabase;
let capture: CaptureServer;
databaseAndCapture(KEY, (fixture) => ({ db, capture } = fixture));

/** The backend holding the row with `uuid` locked: the one a FOR UPDATE of that row waits for. */
async function holderOf(uuid: string): Promise<number> {
  const probe = await db.sql.reserve();
  try {
    const [row] = await probe<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`;
    const pid = row!.pid;
    const waiting = probe`SELECT 1 FROM posthog_outbox.outbox WHERE uuid = ${uuid} FOR UPDATE`.catch(() => undefined);
    const [blocker] = await until(
      () => db.sql<{ holder: number }[]>`SELECT unnest(pg_blocking_pids(${pid}::int)) AS holder`,
      (rows) => rows.length > 0,
      { what: 'the probe to wait on the lane holding the row' },
    );
    await db.sql`SELECT pg_cancel_backend(${pid}::int)`;
    await waiting;
    return blocker!.holder;
  } finally {
    probe.release();
  }
}

it('a lane that loses its connection ends the run only once the other lane has settled its batch', async () => {
  const context = { organization: { id: 'org_1' }, user: { id: 'user_1' } };
  await record(
    db.sql,
    Array.from({ length: 10 }, (_, i) => attributedEvent(context, 'lane_checked', { i })),
  );
  // The first request to arrive is answered after 1.5 s, the second after 6 s.
  capture.delayNext(1, 1_500);
  capture.delayNext(1, 6_000);
  const sql = postgres(db.url, { max: 2, onnotice: () => {} });
  try {
    const settings = resolveSettings({ posthog: { apiKey: KEY, host: capture.url }, batchSize: 5, concurrency: 2 });
    const run = new DrainRun(sql, settings).run();
    const outcome = run.then(
      () => 'resolved',
      (error: Error) => error.message,
    );
    const [first] = await capture.waitForRequests(2, { timeoutMs: 10_000 });
    // The lane whose request is answered first loses its connection: it fails when it settles its batch,
    // while the other lane's request is still out.
    await db.sql`SELECT pg_terminate_backend(${await holderOf(first!.uuids[0]!)}::int)`;
    const failed = await outcome;
    expect(failed).not.toBe('resolved');
    // By then the other lane has settled: its 5 rows delivered and deleted, nothing held.
    expect(await heldRows(db.sql)).toBe(0);
    expect(await outboxCount(db.sql)).toBe(5);
    expect(capture.countsByUuid().size).toBe(10); // both requests reached PostHog; the failed lane's rows are resent later
  } finally {
    await sql.end({ timeout: 5 });
  }
}, 30_000);
