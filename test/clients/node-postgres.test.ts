/**
 * record() with node-postgres (`pg`) against real PostgreSQL: a PoolClient or Client inside the caller's
 * BEGIN/COMMIT (the event is part of that transaction), and a Pool for a one-off write.
 */
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OutboxError } from '../../src/errors/errors.ts';
import { record } from '../../src/record/record.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { badEvent, committed, CREATE_MESSAGES, event } from './support.ts';

let db: TestDatabase;
let pool: pg.Pool;
/** Statements sent through the pool's clients (pg's Client.query, counted). */
let sent: string[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  await db.sql.unsafe(CREATE_MESSAGES);
  pool = new pg.Pool({ connectionString: db.url, max: 4 });
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as { query: unknown }).query = (...args: unknown[]) => {
      if (typeof args[0] === 'string') sent.push(args[0]);
      return query(...args);
    };
  });
});

afterAll(async () => {
  await pool.end();
  await db.drop();
});

beforeEach(async () => {
  await db.sql`TRUNCATE messages, posthog_outbox.outbox`;
  sent = [];
});

/** The handler's transaction on a client of the pool: BEGIN, `body`, COMMIT (ROLLBACK when it throws). */
async function inTransaction<T>(body: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await body(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  } finally {
    client.release();
  }
}

describe('record with a node-postgres PoolClient inside BEGIN', () => {
  it('commits the events with the caller’s rows, in one statement', async () => {
    const uuids = await inTransaction(async (client) => {
      await client.query('INSERT INTO messages (body) VALUES ($1)', ['hello']);
      return record(client, [event('a'), event('b')]);
    });
    expect(uuids).toHaveLength(2);
    expect(await committed(db.sql)).toEqual({ events: ['a', 'b'], messages: ['hello'] });
    expect(sent.filter((s) => s.includes('posthog_outbox'))).toHaveLength(1);
  });

  it('writes nothing on ROLLBACK', async () => {
    await expect(
      inTransaction(async (client) => {
        await client.query('INSERT INTO messages (body) VALUES ($1)', ['lost']);
        await record(client, event('rolled_back'));
        throw new Error('handler failed');
      }),
    ).rejects.toThrow('handler failed');
    expect(await committed(db.sql)).toEqual({ events: [], messages: [] });
  });

  it('runs beside the caller’s own statement in Promise.all (pg queues them on the connection)', async () => {
    await inTransaction((client) => Promise.all([client.query('INSERT INTO messages (body) VALUES ($1)', ['together']), record(client, event('together'))]));
    expect(await committed(db.sql)).toEqual({ events: ['together'], messages: ['together'] });
  });

  it('refuses bad input with an OutboxError before any SQL, and the transaction goes on', async () => {
    await inTransaction(async (client) => {
      const before = sent.length;
      const thrown = await record(client, badEvent()).catch((e: unknown) => e);
      expect(thrown).toBeInstanceOf(OutboxError);
      expect(thrown).toMatchObject({ code: 'required', field: 'event.distinctId' });
      expect(sent.length).toBe(before);
      await client.query('INSERT INTO messages (body) VALUES ($1)', ['still usable']);
      await record(client, event('after_bad'));
    });
    expect(await committed(db.sql)).toEqual({ events: ['after_bad'], messages: ['still usable'] });
  });
});

describe('record with other node-postgres connections', () => {
  it('a Client of its own, inside BEGIN: commit and rollback', async () => {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query('BEGIN');
      await record(client, event('client_rolled_back'));
      await client.query('ROLLBACK');
      await client.query('BEGIN');
      await record(client, event('client_committed'));
      await client.query('COMMIT');
    } finally {
      await client.end();
    }
    expect((await committed(db.sql)).events).toEqual(['client_committed']);
  });

  it('a Pool writes at once (a one-off write on a connection the pool lends)', async () => {
    await record(pool, event('one_off'));
    expect((await committed(db.sql)).events).toEqual(['one_off']);
  });
});
