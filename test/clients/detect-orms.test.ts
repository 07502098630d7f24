import path from 'node:path';
import { EntitySchema, MikroORM } from '@mikro-orm/postgresql';
import { Sequelize } from 'sequelize';
import { DataSource } from 'typeorm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENTS } from '../../src/record/executor.ts';
import { record } from '../../src/record/record.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { generatePrisma, type GeneratedPrisma, type PrismaClientLike } from '../support/prisma.ts';
import { event } from './support.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

class Message {
  id!: number;
}
const MessageSchema = new EntitySchema<Message>({ class: Message, tableName: 'messages', properties: { id: { type: 'number', primary: true } } });

let db: TestDatabase;
let generated: GeneratedPrisma;
let prisma: PrismaClientLike;
let dataSource: DataSource;
let sequelize: Sequelize;
let orm: MikroORM;

beforeAll(async () => {
  db = await createTestDatabase({ migrate: false });
  generated = await generatePrisma();
  prisma = await generated.client(db.url);
  dataSource = await new DataSource({ type: 'postgres', url: db.url, poolSize: 2 }).initialize();
  sequelize = new Sequelize(db.url, { logging: false, pool: { max: 2 } });
  orm = await MikroORM.init({ clientUrl: db.url, entities: [MessageSchema], pool: { max: 2 } });
}, 120_000);

afterAll(async () => {
  await prisma?.$disconnect();
  await generated?.remove();
  await dataSource?.destroy();
  await sequelize?.close();
  await orm?.close();
  await db?.drop();
});

/** The names of the clients whose shape `connection` has. */
const recognisedAs = (connection: unknown) => CLIENTS.filter((c) => c.matches(connection)).map((c) => c.name);

describe('each ORM is recognised as itself and nothing else', () => {
  it('Prisma: the PrismaClient, an extended client, and their transactions', async () => {
    expect(recognisedAs(prisma)).toEqual(['Prisma']);
    await prisma.$transaction(async (tx) => expect(recognisedAs(tx)).toEqual(['Prisma']));
    const extended = (prisma as unknown as { $extends(extension: object): PrismaClientLike }).$extends({});
    expect(recognisedAs(extended)).toEqual(['Prisma']);
    await extended.$transaction(async (tx) => expect(recognisedAs(tx)).toEqual(['Prisma']));
  });

  it('TypeORM: the DataSource, its manager, a transaction’s manager, a QueryRunner', async () => {
    expect(recognisedAs(dataSource)).toEqual(['TypeORM']);
    expect(recognisedAs(dataSource.manager)).toEqual(['TypeORM']);
    await dataSource.transaction(async (manager) => expect(recognisedAs(manager)).toEqual(['TypeORM']));
    const runner = dataSource.createQueryRunner();
    expect(recognisedAs(runner)).toEqual(['TypeORM']);
    await runner.release();
  });

  it('Sequelize: the instance, managed and unmanaged transactions', async () => {
    expect(recognisedAs(sequelize)).toEqual(['Sequelize']);
    await sequelize.transaction(async (t) => expect(recognisedAs(t)).toEqual(['Sequelize']));
    const t = await sequelize.transaction();
    expect(recognisedAs(t)).toEqual(['Sequelize']);
    await t.rollback();
  });

  it('MikroORM: the instance, its em, a fork, a transaction’s em', async () => {
    expect(recognisedAs(orm)).toEqual(['MikroORM']);
    expect(recognisedAs(orm.em)).toEqual(['MikroORM']);
    expect(recognisedAs(orm.em.fork())).toEqual(['MikroORM']);
    await orm.em.transactional(async (em) => expect(recognisedAs(em)).toEqual(['MikroORM']));
  });
});

describe('anything else', () => {
  it('is refused with an OutboxError that names the ORMs beside the other clients', async () => {
    await expect(record({ query: () => 1 } as never, event())).rejects.toMatchObject({
      code: 'invalid_transaction',
      field: 'tx',
      message: expect.stringContaining('drizzle, postgres.js, Kysely, Knex, PGlite, node-postgres, Prisma, TypeORM, Sequelize, MikroORM'),
    });
  });
});
