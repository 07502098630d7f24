/**
 * The delivery chart's arithmetic (src/console/sampler.ts), on readings given to it: differences between two
 * readings land in the later one's minute; a reading after a statistics reset (counts going down) is a gap, not
 * a negative minute; minutes nobody read are null, not zero; the window is the last 60 minutes.
 */
import type postgres from 'postgres';
import { expect, it } from 'vitest';
import { DeliverySampler } from '../../src/console/sampler.ts';

/** A client that answers the counters' statement with the next of `rows` (as PostgreSQL's row would read). */
function scripted(rows: { at: string; deleted: number; dead: number; updated: number; oldest: number | null }[]): postgres.Sql {
  let next = 0;
  return {
    unsafe: async () => {
      const r = rows[next++]!;
      return [
        {
          at: new Date(r.at),
          outbox_deleted: r.deleted,
          dead_letters_inserted: r.dead,
          outbox_updated: r.updated,
          outbox_inserted: 0,
          oldest_age_ms: r.oldest,
        },
      ];
    },
  } as unknown as postgres.Sql;
}

it('per minute: delivered, retried, dead-lettered and the lag, with gaps for what no two readings span', async () => {
  const sampler = new DeliverySampler(
    scripted([
      { at: '2026-12-07T10:00:10Z', deleted: 1000, dead: 10, updated: 50, oldest: 200 },
      { at: '2026-12-07T10:00:40Z', deleted: 1030, dead: 12, updated: 50, oldest: 900 },
      { at: '2026-12-07T10:01:10Z', deleted: 1050, dead: 12, updated: 57, oldest: 4_000 },
      // statistics reset between these two: nothing is said about that interval
      { at: '2026-12-07T10:03:05Z', deleted: 3, dead: 0, updated: 1, oldest: 8_000 },
      { at: '2026-12-07T10:03:35Z', deleted: 13, dead: 1, updated: 1, oldest: null },
    ]),
    'posthog_outbox',
    30_000,
  );
  for (let i = 0; i < 5; i++) await sampler.sample();
  const history = sampler.history();
  expect(history.since).toBe('2026-12-07T10:00:10.000Z');
  expect(history.minutes).toHaveLength(60);
  expect(history.minutes.at(-1)!.minute).toBe('2026-12-07T10:03:00.000Z');
  const last = history.minutes.slice(-4).map(({ minute, ...m }) => [minute.slice(11, 16), m]);
  expect(last).toEqual([
    ['10:00', { delivered: 28, retried: 0, deadLettered: 2, lagMs: 900 }],
    ['10:01', { delivered: 20, retried: 7, deadLettered: 0, lagMs: 4_000 }],
    ['10:02', { delivered: null, retried: null, deadLettered: null, lagMs: null }],
    ['10:03', { delivered: 9, retried: 0, deadLettered: 1, lagMs: 0 }],
  ]);
  expect(history.minutes.slice(0, -4).every((m) => m.delivered === null)).toBe(true);
  expect(history.error).toBeNull();
});

it('a reading that fails is reported, and the next one clears it', async () => {
  let calls = 0;
  const sql = {
    unsafe: async () => {
      if (++calls === 1) throw new Error('connect ECONNREFUSED: postgres://ops:hunter2@db/app');
      return [{ at: new Date(), outbox_deleted: 0, dead_letters_inserted: 0, outbox_updated: 0, outbox_inserted: 0, oldest_age_ms: null }];
    },
  } as unknown as postgres.Sql;
  const sampler = new DeliverySampler(sql, 'posthog_outbox', 10_000);
  await sampler.sample();
  expect(sampler.history().error).toBe('connect ECONNREFUSED: postgres://[redacted]@db/app');
  await sampler.sample();
  expect(sampler.history()).toMatchObject({ error: null, since: expect.any(String) });
});
