/**
 * record() in Knex transactions (the `pg` client) against real PostgreSQL: the event commits and rolls back
 * with the caller's rows, one statement through Knex's raw(), and a Knex for another database is refused.
 */
import knexFactory, { type Knex } from 'knex';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OutboxError } from '../../src/errors/errors.ts';
import { toKnexRaw } from '../../src/record/clients/knex.ts';
import { RECORD_COLUMNS } from '../../src/outbox/columns.ts';
import { record } from '../../src/record/record.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { badEvent, committed, CREATE_MESSAGES, event } from './support.ts';

let db: TestDatabase;
let knex: Knex;
const sent: { sql: string; bindings: unknown[] }[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  await db.sql.unsafe(CREATE_MESSAGES);
  knex = knexFactory({ client: 'pg', connection: db.url, pool: { min: 0, max: 4 } });
  knex.on('query', (q: { sql: string; bindings: unknown[] }) => void sent.push(q));
});

afterAll(async () => {
  await knex.destroy();
  await db.drop();
});

beforeEach(async () => {
  await db.sql`TRUNCATE messages, posthog_outbox.outbox`;
  sent.length = 0;
});

describe('record in a Knex transaction', () => {
  it('commits the events with the caller’s rows, in one statement (a row per event)', async () => {
    await knex.transaction(async (trx) => {
      await trx('messages').insert({ body: 'hello' });
      await record(trx, [event('a'), event('b')]);
    });
    expect(await committed(db.sql)).toEqual({ events: ['a', 'b'], messages: ['hello'] });
    const inserts = sent.filter((q) => q.sql.includes('posthog_outbox'));
    expect(inserts).toHaveLength(1);
    expect(inserts[0]!.bindings).toHaveLength(2 * RECORD_COLUMNS.length);
  });

  it('writes nothing when the transaction rolls back', async () => {
    await expect(
      knex.transaction(async (trx) => {
        await trx('messages').insert({ body: 'lost' });
        await record(trx, event('rolled_back'));
        throw new Error('handler failed');
      }),
    ).rejects.toThrow('handler failed');
    const trx = await knex.transaction();
    await record(trx, event('explicit_rollback'));
    await trx.rollback();
    expect(await committed(db.sql)).toEqual({ events: [], messages: [] });
  });

  it('runs beside the caller’s own statement in Promise.all', async () => {
    await knex.transaction((trx) => Promise.all([trx('messages').insert({ body: 'together' }), record(trx, event('together'))]));
    expect(await committed(db.sql)).toEqual({ events: ['together'], messages: ['together'] });
  });

  it('refuses bad input with an OutboxError before any SQL, and the transaction goes on', async () => {
    await knex.transaction(async (trx) => {
      const before = sent.length;
      const thrown = await record(trx, badEvent()).catch((e: unknown) => e);
      expect(thrown).toBeInstanceOf(OutboxError);
      expect(thrown).toMatchObject({ code: 'required', field: 'event.distinctId' });
      expect(sent.length).toBe(before);
      await trx('messages').insert({ body: 'still usable' });
      await record(trx, event('after_bad'));
    });
    expect(await committed(db.sql)).toEqual({ events: ['after_bad'], messages: ['still usable'] });
  });

  it('writes at once on the Knex instance (a one-off write)', async () => {
    await record(knex, event('one_off'));
    expect((await committed(db.sql)).events).toEqual(['one_off']);
  });

  it('refuses a Knex for another database, naming the field', async () => {
    const mysql = knexFactory({ client: 'mysql2' });
    await expect(record(mysql, event())).rejects.toMatchObject({ code: 'invalid_transaction', field: 'tx', message: expect.stringContaining('mysql') });
    await mysql.destroy();
  });
});

describe('toKnexRaw', () => {
  it('turns $n placeholders into bindings in order of appearance, and escapes literal question marks', () => {
    expect(toKnexRaw(`SELECT $2::int, '?', $1::text, $2::int`, ['a', 2])).toEqual({ sql: `SELECT ?::int, '\\?', ?::text, ?::int`, bindings: [2, 'a', 2] });
  });

  it('a literal question mark reaches PostgreSQL as is', async () => {
    const { sql, bindings } = toKnexRaw(`SELECT '{"a":1}'::jsonb ? $1 AS has, $2::text AS text`, ['a', 'why?']);
    const { rows } = await knex.raw(sql, bindings as Knex.RawBinding[]);
    expect(rows).toEqual([{ has: true, text: 'why?' }]);
  });
});
