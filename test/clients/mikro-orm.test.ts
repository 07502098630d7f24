/**
 * record() in MikroORM 6 transactions (`@mikro-orm/postgresql`) against real PostgreSQL: the shared ORM suite
 * (test/clients/orm-suite.ts) on the `em` of `em.transactional()`, an `em` between begin() and commit() or
 * rollback(), and the MikroORM instance or an `em` outside a transaction refused by name.
 */
import { EntitySchema, MikroORM, type EntityManager } from '@mikro-orm/postgresql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { record } from '../../src/record/record.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { ormSuite } from './orm-suite.ts';
import { committed, CREATE_MESSAGES, event } from './support.ts';

class Message {
  id!: number;
  body!: string;
}
const MessageSchema = new EntitySchema<Message>({
  class: Message,
  tableName: 'messages',
  properties: { id: { type: 'number', primary: true }, body: { type: 'string' } },
});

let db: TestDatabase;
let orm: MikroORM;
const sent: string[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  await db.sql.unsafe(CREATE_MESSAGES);
  orm = await MikroORM.init({
    clientUrl: db.url,
    entities: [MessageSchema],
    pool: { max: 4 },
    // MikroORM's hook on every statement it runs (its query log sees the same)
    onQuery: (query) => {
      sent.push(query);
      return query;
    },
  });
});

afterAll(async () => {
  await orm?.close();
  await db?.drop();
});

const PASS = /pass the `em` of em\.transactional\(async \(em\) => \.\.\.\)/;

describe('record in a MikroORM transaction (the em of em.transactional)', () => {
  ormSuite<EntityManager>(
    () => db,
    () => ({
      transaction: (body) => orm.em.transactional(body),
      insertMessage: async (em, body) => {
        em.persist(em.create(Message, { body }));
        await em.flush();
      },
      sent: () => sent,
      notTransactions: async () => [
        ['the MikroORM instance', orm, new RegExp(`is a MikroORM instance; ${PASS.source}`)],
        ['the global em', orm.em, new RegExp(`is a MikroORM EntityManager outside a transaction; ${PASS.source}`)],
        ['a fork outside a transaction', orm.em.fork(), new RegExp(`is a MikroORM EntityManager outside a transaction; ${PASS.source}`)],
      ],
    }),
  );
});

describe('record in an explicit MikroORM transaction (em.begin)', () => {
  it('commits with em.commit(), rolls back with em.rollback(), and refuses the em once its transaction has ended', async () => {
    await db.sql`TRUNCATE messages, posthog_outbox.outbox`;
    const em = orm.em.fork();
    await em.begin();
    em.persist(em.create(Message, { body: 'kept' }));
    await record(em, event('committed'));
    await em.commit();
    await em.begin();
    em.persist(em.create(Message, { body: 'lost' }));
    await em.flush();
    await record(em, event('rolled_back'));
    await em.rollback();
    expect(await committed(db.sql)).toEqual({ events: ['committed'], messages: ['kept'] });
    await expect(record(em, event('after'))).rejects.toMatchObject({ code: 'invalid_transaction', detail: expect.stringContaining('outside a transaction') });
  });
});
