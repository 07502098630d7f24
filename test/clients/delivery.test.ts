/**
 * End to end: handlers written with Kysely over node-postgres, with node-postgres itself and with Knex
 * record events in their own transactions while a worker runs; the worker delivers exactly the committed
 * ones to the capture server (real posthog-node), and the rolled-back ones never arrive.
 */
import knexFactory, { type Knex } from 'knex';
import { Kysely, PostgresDialect, type Generated } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CaptureServer } from '../../dev/capture-server.ts';
import { record } from '../../src/record/record.ts';
import type { TestDatabase } from '../support/db.ts';
import { inProcessWorkers } from '../support/worker.ts';
import { CREATE_MESSAGES, deliverThroughHandlers, event, failure } from './support.ts';

interface Database {
  messages: { id: Generated<number>; body: string };
}

let db: TestDatabase;
let capture: CaptureServer;
let pool: pg.Pool;
let kysely: Kysely<Database>;
let knex: Knex;

const start = inProcessWorkers('phc_clients', (fixture) => ({ db, capture } = fixture), { backoff: { baseMs: 100, maxMs: 1_000 } });

beforeAll(async () => {
  await db.sql.unsafe(CREATE_MESSAGES);
  pool = new pg.Pool({ connectionString: db.url, max: 4 });
  kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: db.url, max: 4 }) }) });
  knex = knexFactory({ client: 'pg', connection: db.url, pool: { min: 0, max: 4 } });
});

afterAll(async () => {
  await pool.end();
  await kysely.destroy();
  await knex.destroy();
});

/** A chat handler: writes its message and records its event in one transaction; `fail` makes it throw after both. */
type Handler = (i: number, fail: boolean) => Promise<string[]>;

const kyselyHandler: Handler = (i, fail) =>
  kysely.transaction().execute(async (trx) => {
    await trx
      .insertInto('messages')
      .values({ body: `kysely ${i}` })
      .execute();
    const uuids = await record(trx, event(fail ? 'kysely_rolled_back' : 'kysely_committed', i));
    if (fail) throw failure();
    return uuids;
  });

const nodePostgresHandler: Handler = async (i, fail) => {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('INSERT INTO messages (body) VALUES ($1)', [`pg ${i}`]);
    const uuids = await record(client, event(fail ? 'pg_rolled_back' : 'pg_committed', i));
    if (fail) throw failure();
    await client.query('COMMIT');
    return uuids;
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
};

const knexHandler: Handler = (i, fail) =>
  knex.transaction(async (trx) => {
    await trx('messages').insert({ body: `knex ${i}` });
    const uuids = await record(trx, event(fail ? 'knex_rolled_back' : 'knex_committed', i));
    if (fail) throw failure();
    return uuids;
  });

describe('handlers on Kysely, node-postgres and Knex, and the worker', () => {
  it('delivers every committed event once and never a rolled-back one', async () => {
    await start();
    const { byEvent, messages } = await deliverThroughHandlers([kyselyHandler, nodePostgresHandler, knexHandler], capture, db.sql);
    expect(byEvent).toEqual({ kysely_committed: 15, pg_committed: 15, knex_committed: 15 });
    expect(messages).toBe(45);
  });
});
