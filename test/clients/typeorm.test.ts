/**
 * record() in TypeORM transactions (the `postgres` driver) against real PostgreSQL: the shared ORM suite
 * (test/clients/orm-suite.ts) on the EntityManager of `dataSource.transaction()`, a QueryRunner after
 * `startTransaction()` (and its manager), and what is no open transaction refused by name.
 */
import { DataSource, type EntityManager, type Logger } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { record } from '../../src/record/record.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { ormSuite } from './orm-suite.ts';
import { committed, CREATE_MESSAGES, event } from './support.ts';

let db: TestDatabase;
let dataSource: DataSource;
const sent: string[] = [];

/** TypeORM's logger, counting the statements TypeORM runs. */
const logger: Logger = {
  logQuery: (query) => void sent.push(query),
  logQueryError: () => {},
  logQuerySlow: () => {},
  logSchemaBuild: () => {},
  logMigration: () => {},
  log: () => {},
};

beforeAll(async () => {
  db = await createTestDatabase();
  await db.sql.unsafe(CREATE_MESSAGES);
  dataSource = new DataSource({ type: 'postgres', url: db.url, poolSize: 4, logger });
  await dataSource.initialize();
});

afterAll(async () => {
  await dataSource?.destroy();
  await db?.drop();
});

const PASS = /pass the `manager` of dataSource\.transaction\(async \(manager\) => \.\.\.\), or a QueryRunner after startTransaction\(\)/;

describe('record in a TypeORM transaction (the EntityManager of dataSource.transaction)', () => {
  ormSuite<EntityManager>(
    () => db,
    () => ({
      transaction: (body) => dataSource.transaction(body),
      insertMessage: (manager, body) => manager.query('INSERT INTO messages (body) VALUES ($1)', [body]),
      sent: () => sent,
      notTransactions: async () => {
        const runner = dataSource.createQueryRunner();
        await runner.release();
        return [
          ['the DataSource', dataSource, /is a TypeORM DataSource, outside any transaction/],
          ['dataSource.manager', dataSource.manager, /is a TypeORM EntityManager outside a transaction \(such as dataSource\.manager\)/],
          ['a QueryRunner before startTransaction()', runner, /is a TypeORM QueryRunner outside a transaction/],
        ].map(([what, connection, message]) => [what as string, connection, new RegExp(`${(message as RegExp).source}.*${PASS.source}`)]);
      },
    }),
  );
});

describe('record with a TypeORM QueryRunner', () => {
  it('after startTransaction(): commits with the caller’s rows, on the runner and on its manager', async () => {
    await db.sql`TRUNCATE messages, posthog_outbox.outbox`;
    const runner = dataSource.createQueryRunner();
    await runner.connect();
    await runner.startTransaction();
    try {
      await runner.query('INSERT INTO messages (body) VALUES ($1)', ['hello']);
      await record(runner, event('on_runner'));
      await record(runner.manager, event('on_manager'));
      await runner.commitTransaction();
    } finally {
      await runner.release();
    }
    expect(await committed(db.sql)).toEqual({ events: ['on_manager', 'on_runner'], messages: ['hello'] });
  });

  it('rolls back with rollbackTransaction(), then refuses the runner (and a manager whose transaction ended)', async () => {
    await db.sql`TRUNCATE messages, posthog_outbox.outbox`;
    const runner = dataSource.createQueryRunner();
    await runner.startTransaction();
    await runner.query('INSERT INTO messages (body) VALUES ($1)', ['lost']);
    await record(runner, event('rolled_back'));
    await runner.rollbackTransaction();
    await expect(record(runner, event('after'))).rejects.toMatchObject({
      code: 'invalid_transaction',
      detail: expect.stringMatching(/QueryRunner outside a transaction/),
    });
    await expect(record(runner.manager, event('after'))).rejects.toMatchObject({
      code: 'invalid_transaction',
      detail: expect.stringMatching(/EntityManager whose transaction has ended/),
    });
    await runner.release();
    const escaped = await dataSource.transaction(async (manager) => manager);
    await expect(record(escaped, event('after'))).rejects.toMatchObject({ code: 'invalid_transaction' });
    expect(await committed(db.sql)).toEqual({ events: [], messages: [] });
  });

  it('refuses a DataSource of another database, naming its type', async () => {
    const mysql = new DataSource({ type: 'mysql', url: 'mysql://u:p@127.0.0.1:1/none' });
    const runner = mysql.createQueryRunner();
    // A transaction's state without a MySQL server to hold one: the refusal comes before any SQL.
    (runner as { isTransactionActive: boolean }).isTransactionActive = true;
    await expect(record(runner, event())).rejects.toMatchObject({ code: 'invalid_transaction', detail: expect.stringContaining('"mysql"') });
  });
});
