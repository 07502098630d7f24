/**
 * The ledger settles a delivered batch in its transaction and re-identifies what it touched; what the run
 * learns from that (worker/settle/pass-identities.ts) counts only once the transaction has committed. Real PostgreSQL,
 * the statements the worker runs, no PostHog (nothing is sent here: the rows are settled as if accepted).
 */
import type postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attributedEvent, record } from '../../src/index.ts';
import { query } from '../../src/sql/statement.ts';
import * as q from '../../worker/claim/claim.sql.ts';
import { Ledger } from '../../worker/settle/ledger.ts';
import { type ClaimedRow, NIL_UUID } from '../../worker/claim/rows.ts';
import { resolveSettings } from '../../worker/settings/settings.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(() => db.drop());

/** The worker's default settings. */
const DEFAULTS = resolveSettings({ posthog: { apiKey: 'phc_defaults' } });
const { schema, maxAgeMs } = DEFAULTS;
const chat = (i: number) =>
  attributedEvent({ organization: { id: 'org_l', name: 'Ledger Co' }, user: { id: 'user_l', email: 'l@example.com' } }, 'chat_message_sent', { i });
/** Claims every due row in `tx` as the worker does. */
async function claim(tx: postgres.TransactionSql): Promise<ClaimedRow[]> {
  return [...(await query(tx, q.claimBatch(schema), { batchSize: 100, maxAgeMs, from: NIL_UUID }))];
}
const identifyRows = async () =>
  (await db.sql<{ kind: string }[]>`SELECT identity_kind AS kind FROM posthog_outbox.outbox WHERE identity_kind IS NOT NULL ORDER BY 1`).map((r) => r.kind);

describe('Ledger.settle', () => {
  it('a batch whose transaction rolls back teaches the run nothing: the same events settled again identify their entities, once', async () => {
    const ledger = new Ledger(DEFAULTS);
    await record(db.sql, chat(1));

    const rolledBack = new Error('the commit failed');
    await expect(
      db.sql.begin(async (tx) => {
        const committed = await ledger.settle(tx, [], await claim(tx));
        expect(committed).toBeTypeOf('function'); // it identified the user and the organization, pending the commit
        throw rolledBack;
      }),
    ).rejects.toBe(rolledBack);
    expect(await identifyRows()).toEqual([]);
    expect(ledger.stats.identified).toBe(0);

    const committed = await db.sql.begin(async (tx) => ledger.settle(tx, [], await claim(tx)));
    committed?.();
    expect(await identifyRows()).toEqual(['organization', 'user']);
    expect(ledger.stats.identified).toBe(2);

    // Learned once committed: another event of the same entities is simply deleted, nothing more identified.
    await record(db.sql, chat(2));
    const again = await db.sql.begin(async (tx) => {
      const events = (await claim(tx)).filter((e) => e.event === 'chat_message_sent');
      return ledger.settle(tx, [], events);
    });
    expect(again).toBeUndefined();
    expect(await identifyRows()).toEqual(['organization', 'user']);
    expect(ledger.stats.identified).toBe(2);
  });
});
