/**
 * record() on PGlite (PostgreSQL in WebAssembly, in-process, no server): a PGlite instance or transaction,
 * drizzle over PGlite (drizzle-orm/pglite) and Kysely over PGlite. The outbox is created by the project's
 * own migrations, applied statement by statement.
 */
import { PGlite } from '@electric-sql/pglite';
import { drizzle } from 'drizzle-orm/pglite';
import { pgTable, serial, text } from 'drizzle-orm/pg-core';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import { Kysely, type Generated } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OutboxError } from '../../src/errors/errors.ts';
import { MIGRATIONS_FOLDER } from '../../src/outbox/apply.ts';
import { record } from '../../src/record/record.ts';
import { PGliteDialect } from '../support/kysely-pglite.ts';
import { badEvent, CREATE_MESSAGES, event } from './support.ts';

const messages = pgTable('messages', { id: serial('id').primaryKey(), body: text('body').notNull() });

let pg: PGlite;

beforeAll(async () => {
  pg = await PGlite.create();
  for (const migration of readMigrationFiles({ migrationsFolder: MIGRATIONS_FOLDER })) {
    for (const statement of migration.sql) if (statement.trim()) await pg.exec(statement);
  }
  await pg.exec(CREATE_MESSAGES);
}, 60_000);

afterAll(async () => {
  await pg.close();
});

beforeEach(async () => {
  await pg.exec('TRUNCATE messages, posthog_outbox.outbox');
});

/** The outbox's events by event name (`$columns`: which of uuid, event, distinct_id, properties). */
const OPENED = 'SELECT $columns FROM posthog_outbox.outbox ORDER BY event';

async function committed(): Promise<{ events: string[]; messages: string[] }> {
  const events = await pg.query<{ event: string }>(OPENED.replace('$columns', 'event'));
  const bodies = await pg.query<{ body: string }>('SELECT body FROM messages ORDER BY body');
  return { events: events.rows.map((r) => r.event), messages: bodies.rows.map((r) => r.body) };
}

describe('record on PGlite itself', () => {
  it('commits with the caller’s rows in pg.transaction(), and a later throw rolls both back', async () => {
    const uuids = await pg.transaction(async (tx) => {
      await tx.query('INSERT INTO messages (body) VALUES ($1)', ['hello']);
      return record(tx, [event('a'), event('b')]);
    });
    expect(uuids).toHaveLength(2);
    await expect(
      pg.transaction(async (tx) => {
        await tx.query('INSERT INTO messages (body) VALUES ($1)', ['lost']);
        await record(tx, event('rolled_back'));
        throw new Error('handler failed');
      }),
    ).rejects.toThrow('handler failed');
    expect(await committed()).toEqual({ events: ['a', 'b'], messages: ['hello'] });
    const stored = await pg.query<{ uuid: string; distinct_id: string; properties: unknown }>(OPENED.replace('$columns', 'uuid, distinct_id, properties'));
    expect(stored.rows.map((r) => r.uuid)).toEqual(uuids);
    expect(stored.rows[0]).toMatchObject({ distinct_id: 'user_0', properties: { i: 0, organization_id: 'org_1' } });
  });

  it('runs beside the caller’s statement in Promise.all; bad input throws OutboxError and the transaction goes on', async () => {
    await pg.transaction(async (tx) => {
      await Promise.all([tx.query('INSERT INTO messages (body) VALUES ($1)', ['together']), record(tx, event('together'))]);
      await expect(record(tx, badEvent())).rejects.toBeInstanceOf(OutboxError);
      await record(tx, event('after_bad'));
    });
    expect(await committed()).toEqual({ events: ['after_bad', 'together'], messages: ['together'] });
  });

  it('writes at once on the instance (a one-off write)', async () => {
    await record(pg, event('one_off'));
    expect((await committed()).events).toEqual(['one_off']);
  });
});

describe('record through drizzle over PGlite', () => {
  it('commits and rolls back with the caller’s rows', async () => {
    const db = drizzle(pg);
    await db.transaction(async (tx) => {
      await tx.insert(messages).values({ body: 'drizzle' });
      await record(tx, event('drizzle_committed'));
    });
    await expect(
      db.transaction(async (tx) => {
        await tx.insert(messages).values({ body: 'lost' });
        await record(tx, event('drizzle_rolled_back'));
        tx.rollback();
      }),
    ).rejects.toThrow();
    expect(await committed()).toEqual({ events: ['drizzle_committed'], messages: ['drizzle'] });
  });
});

describe('record through Kysely over PGlite', () => {
  interface Database {
    messages: { id: Generated<number>; body: string };
  }

  it('commits and rolls back with the caller’s rows, bad input leaves the transaction usable', async () => {
    const db = new Kysely<Database>({ dialect: new PGliteDialect(pg) });
    await db.transaction().execute(async (trx) => {
      await trx.insertInto('messages').values({ body: 'kysely' }).execute();
      await expect(record(trx, badEvent())).rejects.toMatchObject({ code: 'required', field: 'event.distinctId' });
      await record(trx, event('kysely_committed'));
    });
    await expect(
      db.transaction().execute(async (trx) => {
        await trx.insertInto('messages').values({ body: 'lost' }).execute();
        await record(trx, event('kysely_rolled_back'));
        throw new Error('handler failed');
      }),
    ).rejects.toThrow('handler failed');
    expect(await committed()).toEqual({ events: ['kysely_committed'], messages: ['kysely'] });
  });
});
