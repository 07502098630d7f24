import { PGlite } from '@electric-sql/pglite';
import { drizzle as drizzleNodePostgres } from 'drizzle-orm/node-postgres';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { drizzle as drizzlePostgresJs } from 'drizzle-orm/postgres-js';
import knexFactory from 'knex';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENTS } from '../../src/record/executor.ts';
import { record } from '../../src/record/record.ts';
import { PGliteDialect } from '../support/kysely-pglite.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { event } from './support.ts';
import { modulesLoadedBy } from '../support/imports.ts';

let db: TestDatabase;
let lite: PGlite;
const closers: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  db = await createTestDatabase({ migrate: false });
  lite = await PGlite.create();
  closers.push(() => lite.close());
}, 60_000);

afterAll(async () => {
  for (const close of closers.reverse()) await close();
  await db.drop();
});

/** The names of the clients whose shape `connection` has. */
const recognisedAs = (connection: unknown) => CLIENTS.filter((c) => c.matches(connection)).map((c) => c.name);

describe('each client is recognised as itself and nothing else', () => {
  it('databases, pools and clients outside a transaction', async () => {
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    const client = new pg.Client({ connectionString: db.url });
    const kysely = new Kysely({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: db.url, max: 1 }) }) });
    const knex = knexFactory({ client: 'pg', connection: db.url });
    closers.push(
      () => sql.end(),
      () => pool.end(),
      () => kysely.destroy(),
      () => knex.destroy(),
    );
    expect(recognisedAs(sql)).toEqual(['postgres.js']);
    expect(recognisedAs(drizzlePostgresJs(sql))).toEqual(['drizzle']);
    expect(recognisedAs(drizzleNodePostgres(pool))).toEqual(['drizzle']);
    expect(recognisedAs(drizzlePglite(lite))).toEqual(['drizzle']);
    expect(recognisedAs(pool)).toEqual(['node-postgres']);
    expect(recognisedAs(client)).toEqual(['node-postgres']);
    expect(recognisedAs(kysely)).toEqual(['Kysely']);
    expect(recognisedAs(new Kysely({ dialect: new PGliteDialect(lite) }))).toEqual(['Kysely']);
    expect(recognisedAs(knex)).toEqual(['Knex']);
    expect(recognisedAs(lite)).toEqual(['PGlite']);
  });

  it('transactions and connections lent for one', async () => {
    const sql = postgres(db.url, { max: 2, onnotice: () => {} });
    const pool = new pg.Pool({ connectionString: db.url, max: 2 });
    const kysely = new Kysely({ dialect: new PostgresDialect({ pool }) });
    const knex = knexFactory({ client: 'pg', connection: db.url });
    closers.push(
      () => sql.end(),
      () => kysely.destroy(),
      () => knex.destroy(),
    );
    await sql.begin(async (tx) => expect(recognisedAs(tx)).toEqual(['postgres.js']));
    const reserved = await sql.reserve();
    expect(recognisedAs(reserved)).toEqual(['postgres.js']);
    reserved.release();
    await drizzlePostgresJs(sql).transaction(async (tx) => expect(recognisedAs(tx)).toEqual(['drizzle']));
    await drizzleNodePostgres(pool).transaction(async (tx) => expect(recognisedAs(tx)).toEqual(['drizzle']));
    await drizzlePglite(lite).transaction(async (tx) => expect(recognisedAs(tx)).toEqual(['drizzle']));
    const poolClient = await pool.connect();
    expect(recognisedAs(poolClient)).toEqual(['node-postgres']);
    poolClient.release();
    await kysely.transaction().execute(async (trx) => expect(recognisedAs(trx)).toEqual(['Kysely']));
    await knex.transaction(async (trx) => expect(recognisedAs(trx)).toEqual(['Knex']));
    await lite.transaction(async (tx) => expect(recognisedAs(tx)).toEqual(['PGlite']));
  });
});

describe('anything else', () => {
  it('is refused with an OutboxError that names every accepted client', async () => {
    for (const tx of [{}, null, undefined, 'postgres://x', () => 1, { query: () => 1 }, { query: () => 1, connect: () => 1 }, new Map()]) {
      expect(recognisedAs(tx)).toEqual([]);
      await expect(record(tx as never, event())).rejects.toMatchObject({
        code: 'invalid_transaction',
        field: 'tx',
        message: expect.stringContaining('drizzle, postgres.js, Kysely, Knex, PGlite, node-postgres'),
      });
    }
  });
});

describe('record() loads no client library', () => {
  it('importing it loads none of drizzle-orm, Kysely, Knex, pg, PGlite, Prisma, TypeORM, Sequelize, MikroORM', () => {
    const urls = modulesLoadedBy(['src/record/record.ts']);
    expect(urls.some((u) => u.endsWith('/src/record/clients/kysely.ts'))).toBe(true); // the hook saw the adapters
    expect(urls.some((u) => u.endsWith('/src/record/clients/prisma.ts'))).toBe(true);
    const libraries = /\/node_modules\/(drizzle-orm|kysely|knex|pg|pg-pool|@electric-sql\/pglite|@prisma|prisma|typeorm|sequelize|@mikro-orm)\//;
    expect(urls.filter((u) => libraries.test(u))).toEqual([]);
  });
});
