/**
 * End to end, as test/clients/delivery.test.ts for the other clients: handlers written with Prisma 7, TypeORM,
 * Sequelize and MikroORM 6 record events in their own transactions while a worker runs; the worker delivers
 * exactly the committed ones to the capture server (real posthog-node), once each, and never a rolled-back one.
 */
import { EntitySchema, MikroORM } from '@mikro-orm/postgresql';
import { DataTypes, type Model, type ModelStatic, Sequelize, type Transaction } from 'sequelize';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CaptureServer } from '../../dev/capture-server.ts';
import { record } from '../../src/record/record.ts';
import type { TestDatabase } from '../support/db.ts';
import { generatePrisma, type GeneratedPrisma, type PrismaClientLike } from '../support/prisma.ts';
import { inProcessWorkers } from '../support/worker.ts';
import { CREATE_MESSAGES, deliverThroughHandlers, event, failure } from './support.ts';

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
let capture: CaptureServer;
let generated: GeneratedPrisma;
let prisma: PrismaClientLike;
let dataSource: DataSource;
let sequelize: Sequelize;
let SequelizeMessage: ModelStatic<Model<{ id?: number; body: string }>>;
let orm: MikroORM;

const start = inProcessWorkers('phc_orms', (fixture) => ({ db, capture } = fixture), { backoff: { baseMs: 100, maxMs: 1_000 } });

beforeAll(async () => {
  await db.sql.unsafe(CREATE_MESSAGES);
  generated = await generatePrisma();
  prisma = await generated.client(db.url);
  dataSource = await new DataSource({ type: 'postgres', url: db.url, poolSize: 4 }).initialize();
  sequelize = new Sequelize(db.url, { logging: false, pool: { max: 4 } });
  SequelizeMessage = sequelize.define('Message', { body: { type: DataTypes.TEXT, allowNull: false } }, { tableName: 'messages', timestamps: false });
  orm = await MikroORM.init({ clientUrl: db.url, entities: [MessageSchema], pool: { max: 4 } });
}, 120_000);

afterAll(async () => {
  await prisma?.$disconnect();
  await generated?.remove();
  await dataSource?.destroy();
  await sequelize?.close();
  await orm?.close();
});

/** A chat handler: writes its message and records its event in one transaction; `fail` makes it throw after both. */
type Handler = (i: number, fail: boolean) => Promise<string[]>;

const name = (orm: string, fail: boolean) => `${orm}_${fail ? 'rolled_back' : 'committed'}`;

const prismaHandler: Handler = (i, fail) =>
  prisma.$transaction(
    async (tx) => {
      await tx.message.create({ data: { body: `prisma ${i}` } });
      const uuids = await record(tx, event(name('prisma', fail), i));
      if (fail) throw failure();
      return uuids;
    },
    { timeout: 20_000, maxWait: 20_000 },
  );

const typeOrmHandler: Handler = (i, fail) =>
  dataSource.transaction(async (manager) => {
    await manager.query('INSERT INTO messages (body) VALUES ($1)', [`typeorm ${i}`]);
    const uuids = await record(manager, event(name('typeorm', fail), i));
    if (fail) throw failure();
    return uuids;
  });

/** Sequelize, managed for even `i`, unmanaged (commit or rollback by hand) for odd. */
const sequelizeHandler: Handler = async (i, fail) => {
  const body = async (transaction: Transaction) => {
    await SequelizeMessage.create({ body: `sequelize ${i}` }, { transaction });
    const uuids = await record(transaction, event(name('sequelize', fail), i));
    if (fail) throw failure();
    return uuids;
  };
  if (i % 2 === 0) return sequelize.transaction(body);
  const t = await sequelize.transaction();
  try {
    const uuids = await body(t);
    await t.commit();
    return uuids;
  } catch (error) {
    await t.rollback();
    throw error;
  }
};

const mikroOrmHandler: Handler = (i, fail) =>
  orm.em.transactional(async (em) => {
    em.persist(em.create(Message, { body: `mikro-orm ${i}` }));
    await em.flush();
    const uuids = await record(em, event(name('mikro_orm', fail), i));
    if (fail) throw failure();
    return uuids;
  });

describe('handlers on Prisma, TypeORM, Sequelize and MikroORM, and the worker', () => {
  it('delivers every committed event once and never a rolled-back one', async () => {
    await start();
    const { byEvent, messages } = await deliverThroughHandlers([prismaHandler, typeOrmHandler, sequelizeHandler, mikroOrmHandler], capture, db.sql);
    expect(byEvent).toEqual({ prisma_committed: 15, typeorm_committed: 15, sequelize_committed: 15, mikro_orm_committed: 15 });
    expect(messages).toBe(60);
  });
});
