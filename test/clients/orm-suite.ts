/**
 * What every ORM's transaction must do with record(), as one suite each ORM's test file runs against real
 * PostgreSQL (test/clients/prisma.test.ts, typeorm.test.ts, sequelize.test.ts, mikro-orm.test.ts): commit and
 * roll back with the caller's rows, one statement for any number of events, side by side with the caller's
 * own statement in Promise.all, bad input refused before any SQL with the transaction still usable, the
 * ORM's other objects refused by name before any SQL, and rows exactly as postgres.js's record() stores them.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { OutboxError } from '../../src/errors/errors.ts';
import type { OutboxEvent } from '../../src/record/event.ts';
import type { Connection } from '../../src/record/executor.ts';
import { record } from '../../src/record/record.ts';
import { RECORD_COLUMNS } from '../../src/outbox/columns.ts';
import { VALUES_ROWS_LIMIT } from '../../src/record/record.sql.ts';
import type { TestDatabase } from '../support/db.ts';
import { badEvent, committed, event } from './support.ts';

export interface OrmSpec<Tx> {
  /** Runs `body` in the ORM's own managed transaction (committed when it returns, rolled back when it throws). */
  transaction<T>(body: (tx: Tx) => Promise<T>): Promise<T>;
  /** The caller's own write in `tx`, through the ORM: a row of `messages`. */
  insertMessage(tx: Tx, body: string): Promise<unknown>;
  /** The statements the ORM has run so far, as its own query log saw them. */
  sent(): readonly string[];
  /** The ORM's objects that are no open transaction: what each is, the object, and what the refusal must say. */
  notTransactions(): Promise<[string, unknown, RegExp][]>;
}

/**
 * A rich event `i`: quotes, backslashes, every placeholder syntax an ORM might read (`?`, `$1`, `:name`),
 * unicode beyond the BMP, numbers jsonb normalises, a Date, all three profiles and a millisecond timestamp.
 */
export function richEvent(i: number): OutboxEvent {
  return {
    event: i % 3 === 0 ? '$ai_generation' : `chat message ${i} — ünïcødé 😀`,
    distinctId: `user ${i} 'single' "double" \\ ? $1 :name`,
    properties: {
      i,
      text: 'it\'s a "test" \\ \\\\ \n\t ? ?? $1 $$ :x %s {y} \u2028 \u00a0',
      emoji: '😀👩‍👩‍👧',
      numbers: [0.1, 1e21, 12345678901234567000, -0, -1.5e-7, 2 ** 53],
      nested: { a: [1, null, true, { b: 'c', 'd e': [[[]]] }], empty: {} },
      at: new Date(Date.UTC(2024, 1, 29, 12, 0, 0, 1)),
      ключ: 'значение',
      $groups: { organization: 'org ?' },
    },
    groups: { organization: 'org ?', project: `p${i}` },
    timestamp: new Date(Date.UTC(2024, 1, 29, 23, 59, 59, i % 1000)),
    profiles: {
      user: { id: `user ${i} 'single' "double" \\ ? $1 :name`, fields: { email: `u${i}@example.com`, n: 1.25, admin: true } },
      automation: { id: `automation ${i}`, fields: {} },
      organization: { id: 'org ?', fields: { name: 'O\'Reilly & "Sons" \\ ?' } },
    },
  };
}

/** The outbox's rows in write order, every column record() writes but the uuid, as PostgreSQL's text (the stored values exactly). */
async function storedRows(db: TestDatabase): Promise<Record<string, string | null>[]> {
  const columns = RECORD_COLUMNS.filter(([name]) => name !== 'uuid').map(([name]) => `"${name}"::text AS "${name}"`);
  return db.sql.unsafe(`SELECT ${columns.join(', ')} FROM posthog_outbox.outbox ORDER BY uuid`);
}

/** Statements of `sent` since `from` that wrote to the outbox. */
const outboxStatements = (sent: readonly string[], from = 0) => sent.slice(from).filter((s) => s.includes('posthog_outbox'));

export function ormSuite<Tx>(db: () => TestDatabase, orm: () => OrmSpec<Tx>): void {
  const recordIn = (tx: Tx, events: Parameters<typeof record>[1]) => record(tx as Connection, events);

  beforeEach(async () => {
    await db().sql`TRUNCATE messages, posthog_outbox.outbox`;
  });

  it('commits the events with the caller’s rows, in one statement (a row per event)', async () => {
    const before = orm().sent().length;
    const uuids = await orm().transaction(async (tx) => {
      await orm().insertMessage(tx, 'hello');
      return recordIn(tx, [event('a'), event('b'), event('c')]);
    });
    expect(uuids).toHaveLength(3);
    expect(await committed(db().sql)).toEqual({ events: ['a', 'b', 'c'], messages: ['hello'] });
    expect(outboxStatements(orm().sent(), before)).toHaveLength(1);
  });

  it('writes nothing when the transaction rolls back', async () => {
    await expect(
      orm().transaction(async (tx) => {
        await orm().insertMessage(tx, 'lost');
        await recordIn(tx, event('rolled_back'));
        throw new Error('handler failed');
      }),
    ).rejects.toThrow('handler failed');
    expect(await committed(db().sql)).toEqual({ events: [], messages: [] });
  });

  it('records in Promise.all beside the caller’s own statement and other records, all in the one transaction', async () => {
    const results = await orm().transaction((tx) =>
      Promise.all([orm().insertMessage(tx, 'together'), recordIn(tx, event('one')), recordIn(tx, [event('two'), event('three')])]),
    );
    expect(results.slice(1).flat()).toHaveLength(3);
    expect(await committed(db().sql)).toEqual({ events: ['one', 'three', 'two'], messages: ['together'] });
    await expect(
      orm().transaction(async (tx) => {
        await Promise.all([orm().insertMessage(tx, 'lost'), recordIn(tx, event('lost_1')), recordIn(tx, event('lost_2'))]);
        throw new Error('handler failed');
      }),
    ).rejects.toThrow('handler failed');
    expect(await committed(db().sql)).toEqual({ events: ['one', 'three', 'two'], messages: ['together'] });
  });

  it('refuses bad input with an OutboxError before any SQL, and the transaction goes on', async () => {
    await orm().transaction(async (tx) => {
      const before = orm().sent().length;
      const thrown = await recordIn(tx, [event('fine'), badEvent()]).catch((e: unknown) => e);
      expect(thrown).toBeInstanceOf(OutboxError);
      expect(thrown).toMatchObject({ code: 'required', field: 'events[1].distinctId' });
      expect(orm().sent().length).toBe(before);
      await orm().insertMessage(tx, 'still usable');
      await recordIn(tx, event('after_bad'));
    });
    expect(await committed(db().sql)).toEqual({ events: ['after_bad'], messages: ['still usable'] });
  });

  it('refuses what is no open transaction, saying what to pass, before any SQL', async () => {
    const cases = await orm().notTransactions();
    expect(cases.length).toBeGreaterThan(0);
    for (const [what, connection, message] of cases) {
      const before = orm().sent().length;
      const thrown = await record(connection as Connection, event('never')).catch((e: unknown) => e);
      expect(thrown, what).toBeInstanceOf(OutboxError);
      expect(thrown, what).toMatchObject({ code: 'invalid_transaction', field: 'tx' });
      expect((thrown as OutboxError).detail, what).toMatch(message);
      expect(orm().sent().length, what).toBe(before);
    }
    expect(await committed(db().sql)).toEqual({ events: [], messages: [] });
  });

  describe('stores exactly what postgres.js’s record() stores', () => {
    it.each([
      ['one event', 1],
      ['a few events (VALUES)', 5],
      [`more than ${VALUES_ROWS_LIMIT} events (one JSON parameter)`, VALUES_ROWS_LIMIT + 6],
    ])('%s: jsonb, timestamptz and text columns alike', async (_name, count) => {
      const events = Array.from({ length: count }, (_, i) => richEvent(i));
      await db().sql.begin((tx) => record(tx, events));
      const expected = await storedRows(db());
      expect(expected).toHaveLength(count);
      await db().sql`TRUNCATE posthog_outbox.outbox`;
      await orm().transaction((tx) => recordIn(tx, events));
      expect(await storedRows(db())).toEqual(expected);
    });
  });
}
