/**
 * record() in Sequelize transactions (the `postgres` dialect) against real PostgreSQL: the shared ORM suite
 * (test/clients/orm-suite.ts) on a managed transaction, an unmanaged one (commit and rollback), and the
 * Sequelize instance, an ended transaction or another dialect's transaction refused by name.
 */
import { DataTypes, Sequelize, Transaction, type ModelStatic, type Model } from 'sequelize';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { record } from '../../src/record/record.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { ormSuite } from './orm-suite.ts';
import { committed, CREATE_MESSAGES, event } from './support.ts';

let db: TestDatabase;
let sequelize: Sequelize;
let Message: ModelStatic<Model<{ id?: number; body: string }>>;
const sent: string[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  await db.sql.unsafe(CREATE_MESSAGES);
  sequelize = new Sequelize(db.url, { logging: (query) => void sent.push(query), pool: { max: 4 } });
  Message = sequelize.define('Message', { body: { type: DataTypes.TEXT, allowNull: false } }, { tableName: 'messages', timestamps: false });
});

afterAll(async () => {
  await sequelize?.close();
  await db?.drop();
});

describe('record in a managed Sequelize transaction', () => {
  ormSuite<Transaction>(
    () => db,
    () => ({
      transaction: (body) => sequelize.transaction(body),
      insertMessage: (transaction, body) => Message.create({ body }, { transaction }),
      sent: () => sent,
      notTransactions: async () => {
        const ended = await sequelize.transaction();
        await ended.commit();
        return [
          [
            'the Sequelize instance',
            sequelize,
            /is a Sequelize instance, outside any transaction; pass the Transaction: the `t` of sequelize\.transaction\(async \(t\) => \.\.\.\), or `await sequelize\.transaction\(\)`/,
          ],
          ['a committed transaction', ended, /is a Sequelize Transaction that has already committed; pass an open one/],
        ];
      },
    }),
  );
});

describe('record in an unmanaged Sequelize transaction', () => {
  it('commits with t.commit(), rolls back with t.rollback(), and refuses the transaction once it has ended', async () => {
    await db.sql`TRUNCATE messages, posthog_outbox.outbox`;
    const kept = await sequelize.transaction();
    await Message.create({ body: 'kept' }, { transaction: kept });
    await record(kept, event('committed'));
    await kept.commit();
    const lost = await sequelize.transaction();
    await Message.create({ body: 'lost' }, { transaction: lost });
    await record(lost, [event('rolled_back'), event('rolled_back')]);
    await lost.rollback();
    expect(await committed(db.sql)).toEqual({ events: ['committed'], messages: ['kept'] });
    await expect(record(lost, event('after'))).rejects.toMatchObject({ code: 'invalid_transaction', detail: expect.stringContaining('already rolled back') });
  });

  it('refuses a transaction of another dialect, naming it', async () => {
    const mysql = new Sequelize('mysql://u:p@127.0.0.1:1/none', { logging: false });
    await expect(record(new Transaction(mysql, {}), event())).rejects.toMatchObject({
      code: 'invalid_transaction',
      detail: expect.stringContaining('"mysql"'),
    });
    await mysql.close();
  });
});
