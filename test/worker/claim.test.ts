/**
 * The claim (worker/claim/claim.sql.ts, claimBatch) on a real PostgreSQL: rows never tried in write order first, then
 * retries whose backoff is over, rows still waiting never; the claim locks no more rows than it returns; a
 * run's start point skips what its other lanes hold. Also the idle probe, the next-due time and the resume
 * after an outage, which read the same two kinds of row.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { attributedEvent, record } from '../../src/index.ts';
import { query, type Statement, type Values } from '../../src/sql/statement.ts';
import * as q from '../../worker/claim/claim.sql.ts';
import * as dueSql from '../../worker/scheduling/due.sql.ts';
import { NIL_UUID as NIL, type ClaimedRow } from '../../worker/claim/rows.ts';
import { resolveSettings } from '../../worker/settings/settings.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.drop());
beforeEach(async () => {
  await db.sql`TRUNCATE posthog_outbox.outbox`;
});

/** The worker's default settings. */
const DEFAULTS = resolveSettings({ posthog: { apiKey: 'phc_defaults' } });
const { schema, maxAgeMs } = DEFAULTS;
const chat = (i: number) => attributedEvent({ organization: { id: 'org_c' }, user: { id: `user_${i}` } }, 'chat_message_sent', { i });

/** Records one event per row (a pack of one each), in order; returns the rows' uuids. */
async function rows(count: number, from = 0): Promise<string[]> {
  const uuids: string[] = [];
  for (let i = from; i < from + count; i++) {
    await record(db.sql, chat(i));
    const [row] = await db.sql<{ uuid: string }[]>`SELECT uuid FROM posthog_outbox.outbox ORDER BY uuid DESC LIMIT 1`;
    uuids.push(row!.uuid);
  }
  return uuids;
}

/** Makes `uuid` a row that failed `attempts` times and is due `inSeconds` from now (negative: already due). */
async function backoff(uuid: string, inSeconds: number, attempts = 1): Promise<void> {
  await db.sql`UPDATE posthog_outbox.outbox SET attempts = ${attempts}, next_attempt_at = now() + make_interval(secs => ${inSeconds}) WHERE uuid = ${uuid}`;
}

const claimed = (list: ClaimedRow[]) => list.map((r) => r.uuid);

describe('claimBatch', () => {
  it('claims rows never tried in write order, then retries whose backoff is over (soonest first), never rows still waiting', async () => {
    const [a, b, c, d, e] = await rows(5);
    await backoff(b!, -2);
    await backoff(d!, -5);
    await backoff(e!, 3600);
    const got = await db.sql.begin((tx) => query(tx, q.claimBatch(schema), { batchSize: 10, maxAgeMs, from: NIL }));
    expect(claimed(got)).toEqual([a, c, d, b]);
    expect(got.map((r) => r.attempts)).toEqual([0, 0, 1, 1]);
  });

  it('a row that keeps failing cannot crowd rows never tried out of a small claim', async () => {
    const [first] = await rows(1);
    await backoff(first!, -60, 7);
    const fresh = await rows(3, 1);
    const got = await db.sql.begin((tx) => query(tx, q.claimBatch(schema), { batchSize: 3, maxAgeMs, from: NIL }));
    expect(claimed(got)).toEqual(fresh);
  });

  it('locks only the rows it returns: rows waiting to be retried stay free for another lane when fresh rows fill the claim', async () => {
    const fresh = await rows(3);
    const retried = await rows(2, 3);
    for (const uuid of retried) await backoff(uuid, -1);
    await db.sql.begin(async (tx) => {
      expect(claimed(await query(tx, q.claimBatch(schema), { batchSize: 3, maxAgeMs, from: NIL }))).toEqual(fresh);
      // another lane, while the first holds its claim
      const other = await db.sql.begin((tx2) => query(tx2, q.claimBatch(schema), { batchSize: 10, maxAgeMs, from: NIL }));
      expect(claimed(other)).toEqual(retried);
    });
  });

  it("starts the scan of fresh rows at the pass's start point, and skips rows another transaction holds", async () => {
    const uuids = await rows(6);
    await db.sql.begin(async (tx) => {
      await tx`SELECT 1 FROM posthog_outbox.outbox WHERE uuid = ${uuids[3]!} FOR UPDATE`;
      const got = await db.sql.begin((tx2) => query(tx2, q.claimBatch(schema), { batchSize: 10, maxAgeMs, from: uuids[2]! }));
      expect(claimed(got)).toEqual([uuids[2], uuids[4], uuids[5]]);
    });
  });
});

describe('the idle probe and the next-due time', () => {
  const due = async () => (await query(db.sql, dueSql.anyDue(schema)))[0]!.due;
  const nextDue = async () => (await query(db.sql, dueSql.nextDue(schema)))[0]!.at;

  it('nothing queued: nothing due, no next-due time', async () => {
    expect(await due()).toBe(false);
    expect(await nextDue()).toBeNull();
  });

  it('a row never tried: due now', async () => {
    await rows(1);
    expect(await due()).toBe(true);
    expect(Math.abs(Date.now() - (await nextDue())!.getTime())).toBeLessThan(5_000);
  });

  it('only rows waiting out a backoff: not due, next due when the soonest backoff ends; due once it has', async () => {
    const [a, b] = await rows(2);
    await backoff(a!, 600);
    await backoff(b!, 60);
    expect(await due()).toBe(false);
    const at = (await nextDue())!.getTime();
    expect(at - Date.now()).toBeGreaterThan(50_000);
    expect(at - Date.now()).toBeLessThan(70_000);
    await backoff(b!, -1);
    expect(await due()).toBe(true);
  });

  it('a row never tried that was made due later (by hand) is not due until then', async () => {
    const [a] = await rows(1);
    await backoff(a!, 60, 0);
    expect(await due()).toBe(false);
    const got = await db.sql.begin((tx) => query(tx, q.claimBatch(schema), { batchSize: 10, maxAgeMs, from: NIL }));
    expect(got).toEqual([]);
    await backoff(a!, -1, 0);
    expect(await due()).toBe(true);
  });

  it('PostHog recovered: rows waiting out a backoff are due now, their attempts kept', async () => {
    const [a, b, c] = await rows(3);
    await backoff(a!, 600);
    await backoff(b!, 30, 3);
    await query(db.sql, dueSql.resumeWaitingRows(schema));
    const left = await db.sql<{ uuid: string; due: boolean; attempts: number }[]>`
      SELECT uuid, next_attempt_at <= now() AS due, attempts FROM posthog_outbox.outbox ORDER BY uuid`;
    expect(left).toEqual([
      { uuid: a, due: true, attempts: 1 },
      { uuid: b, due: true, attempts: 3 },
      { uuid: c, due: true, attempts: 0 },
    ]);
  });
});

describe('after an outage: 100,000 failed rows ahead of every fresh one in uuid order', () => {
  const FAILED_ROWS = 100_000;
  /** The rows a statement may read beside the failed ones it walks once (primary-key order): a handful. */
  const FEW = 20;

  beforeEach(async () => {
    // A long outage: each failed pass had tried the oldest fresh rows, so the rows that failed are the oldest.
    await db.sql.unsafe(`INSERT INTO posthog_outbox.outbox (uuid, event, distinct_id, properties, groups, timestamp, attempts, next_attempt_at, last_error)
      SELECT uuidv7(), 'tool_called', 'user_' || (i % 100), jsonb_build_object('i', i), '{}', now(), 1 + i % 5, now() + interval '1 minute', 'HTTP 503'
      FROM generate_series(1, ${FAILED_ROWS}) AS i`);
    await db.sql`ANALYZE posthog_outbox.outbox`; // the planner knows what the table holds
  });

  /**
   * Runs `statement` as the worker does (prepared: from the sixth run on PostgreSQL may switch to its generic
   * plan) seven times, each in a transaction of its own; returns the last result and the most outbox rows one run
   * read (heap rows fetched through an index plus rows of sequential scans: the transaction's own statistics).
   */
  async function reads<P extends Values, T extends object>(statement: Statement<P, T>, values: P): Promise<{ result: T[]; read: number }> {
    let result: T[] = [];
    let read = 0;
    for (let i = 0; i < 7; i++) {
      await db.sql.begin(async (tx) => {
        const counted = async () => {
          const [row] = await tx<{ n: string }[]>`SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) AS n
            FROM pg_stat_xact_user_tables WHERE relid = 'posthog_outbox.outbox'::regclass`;
          return Number(row!.n);
        };
        const before = await counted();
        result = await query(tx, statement, values, { prepare: true });
        read = Math.max(read, (await counted()) - before);
      });
    }
    return { result, read };
  }

  it('fresh rows behind them are due: the probe, the next-due time and a claim walk the failed rows once, no more', async () => {
    const fresh = await rows(3);
    const probe = await reads(dueSql.anyDue(schema), {});
    expect(probe.result[0]!.due).toBe(true);
    expect(probe.read).toBeLessThanOrEqual(FAILED_ROWS + FEW);
    const next = await reads(dueSql.nextDue(schema), {});
    expect(Math.abs(Date.now() - next.result[0]!.at!.getTime())).toBeLessThan(5_000);
    expect(next.read).toBeLessThanOrEqual(FAILED_ROWS + FEW);
    const claim = await reads(q.claimBatch(schema), { batchSize: 2, maxAgeMs, from: NIL });
    expect(claimed(claim.result)).toEqual(fresh.slice(0, 2));
    expect(claim.read).toBeLessThanOrEqual(FAILED_ROWS + FEW);
  });

  it('nothing fresh, every failed row waiting: not due, and no statement scans the failed rows a second time for a due one', async () => {
    const probe = await reads(dueSql.anyDue(schema), {});
    expect(probe.result[0]!.due).toBe(false);
    expect(probe.read).toBeLessThanOrEqual(FAILED_ROWS + FEW);
    const next = await reads(dueSql.nextDue(schema), {});
    expect(next.result[0]!.at!.getTime() - Date.now()).toBeGreaterThan(30_000);
    expect(next.read).toBeLessThanOrEqual(FAILED_ROWS + FEW);
    const claim = await reads(q.claimBatch(schema), { batchSize: 1000, maxAgeMs, from: NIL });
    expect(claim.result).toEqual([]);
    expect(claim.read).toBeLessThanOrEqual(FAILED_ROWS + FEW);
  });

  it("the same with the planner's statistics from before a drain (most rows then due): still one walk, no scan of the table", async () => {
    await db.sql.unsafe(`INSERT INTO posthog_outbox.outbox (uuid, event, distinct_id, properties, groups, timestamp)
      SELECT uuidv7(), 'tool_called', 'user_' || (i % 100), jsonb_build_object('i', i), '{}', now() FROM generate_series(1, ${FAILED_ROWS} * 2) AS i`);
    await db.sql`ANALYZE posthog_outbox.outbox`;
    await db.sql`DELETE FROM posthog_outbox.outbox WHERE attempts = 0`; // delivered since; not analyzed again
    await db.sql`VACUUM posthog_outbox.outbox`;
    const probe = await reads(dueSql.anyDue(schema), {});
    expect(probe.result[0]!.due).toBe(false);
    expect(probe.read).toBeLessThanOrEqual(FAILED_ROWS + FEW);
    const claim = await reads(q.claimBatch(schema), { batchSize: 1000, maxAgeMs, from: NIL });
    expect(claim.result).toEqual([]);
    expect(claim.read).toBeLessThanOrEqual(FAILED_ROWS + FEW);
  });

  it('PostHog accepts again: the failed rows are made due and claimed after the fresh ones, reading each once', async () => {
    const fresh = await rows(2);
    await query(db.sql, dueSql.resumeWaitingRows(schema));
    const claim = await reads(q.claimBatch(schema), { batchSize: 1000, maxAgeMs, from: NIL });
    expect(claimed(claim.result.slice(0, 2))).toEqual(fresh);
    expect(claim.result).toHaveLength(1000);
    expect(claim.result.slice(2).every((r) => r.attempts > 0)).toBe(true);
    expect(claim.read).toBeLessThanOrEqual(FAILED_ROWS + 1000 + FEW);
  });
});
