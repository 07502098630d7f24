/**
 * record() in Kysely transactions over node-postgres (Kysely's own PostgresDialect) against real PostgreSQL:
 * the event commits and rolls back with the caller's rows, in one statement sent through Kysely's executor.
 */
import { Kysely, PostgresDialect, type Generated, type LogEvent } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OutboxError } from '../../src/errors/errors.ts';
import { record } from '../../src/record/record.ts';
import { RECORD_COLUMNS } from '../../src/outbox/columns.ts';
import { createTestDatabase, type TestDatabase } from '../support/db.ts';
import { queuedEvents } from '../support/queued.ts';
import { badEvent, committed, CREATE_MESSAGES, event } from './support.ts';

interface Database {
  messages: { id: Generated<number>; body: string };
}

let db: TestDatabase;
let pool: pg.Pool;
let kysely: Kysely<Database>;
const log: LogEvent[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  await db.sql.unsafe(CREATE_MESSAGES);
  pool = new pg.Pool({ connectionString: db.url, max: 4 });
  kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }), log: (e) => void log.push(e) });
});

afterAll(async () => {
  await kysely.destroy();
  await db.drop();
});

beforeEach(async () => {
  await db.sql`TRUNCATE messages, posthog_outbox.outbox`;
  log.length = 0;
});

describe('record in a Kysely transaction (pg dialect)', () => {
  it('commits the events with the caller’s rows, in one statement through Kysely', async () => {
    const uuids = await kysely.transaction().execute(async (trx) => {
      await trx.insertInto('messages').values({ body: 'hello' }).execute();
      return record(trx, [event('a'), event('b'), event('c')]);
    });
    expect(uuids).toHaveLength(3);
    expect(await committed(db.sql)).toEqual({ events: ['a', 'b', 'c'], messages: ['hello'] });
    const inserts = log.filter((e) => e.query.sql.includes('posthog_outbox'));
    expect(inserts).toHaveLength(1);
    expect(inserts[0]!.query.sql).toMatch(/^INSERT INTO "posthog_outbox"\."outbox" \("uuid", "event", .*\) VALUES \(.*\), \(.*\), \(.*\)$/);
    expect(inserts[0]!.query.parameters).toHaveLength(3 * RECORD_COLUMNS.length);
    const rows = await queuedEvents(db.sql);
    expect(rows.map((r) => r.uuid).sort()).toEqual([...uuids].sort());
  });

  it('writes nothing when the transaction rolls back (the handler throws after recording)', async () => {
    await expect(
      kysely.transaction().execute(async (trx) => {
        await trx.insertInto('messages').values({ body: 'lost' }).execute();
        await record(trx, event('rolled_back'));
        throw new Error('handler failed');
      }),
    ).rejects.toThrow('handler failed');
    expect(await committed(db.sql)).toEqual({ events: [], messages: [] });
  });

  it('runs beside the caller’s own statement in Promise.all, both in the transaction', async () => {
    await kysely.transaction().execute(async (trx) => {
      await Promise.all([trx.insertInto('messages').values({ body: 'together' }).execute(), record(trx, event('together'))]);
    });
    expect(await committed(db.sql)).toEqual({ events: ['together'], messages: ['together'] });
    await expect(
      kysely.transaction().execute(async (trx) => {
        await Promise.all([trx.insertInto('messages').values({ body: 'apart' }).execute(), record(trx, event('apart'))]);
        throw new Error('undo both');
      }),
    ).rejects.toThrow('undo both');
    expect(await committed(db.sql)).toEqual({ events: ['together'], messages: ['together'] });
  });

  it('refuses bad input with an OutboxError before any SQL, and the transaction goes on', async () => {
    await kysely.transaction().execute(async (trx) => {
      const before = log.length;
      const thrown = await record(trx, [event('fine'), badEvent()]).catch((e: unknown) => e);
      expect(thrown).toBeInstanceOf(OutboxError);
      expect(thrown).toMatchObject({ code: 'required', field: 'events[1].distinctId' });
      expect(log.length).toBe(before);
      await trx.insertInto('messages').values({ body: 'still usable' }).execute();
      await record(trx, event('after_bad'));
    });
    expect(await committed(db.sql)).toEqual({ events: ['after_bad'], messages: ['still usable'] });
  });

  it('rolls back with a controlled transaction (startTransaction)', async () => {
    const trx = await kysely.startTransaction().execute();
    await record(trx, event('controlled'));
    await trx.rollback().execute();
    const kept = await kysely.startTransaction().execute();
    await record(kept, event('controlled_kept'));
    await kept.commit().execute();
    expect((await committed(db.sql)).events).toEqual(['controlled_kept']);
  });

  it('writes at once on a Kysely instance (a one-off write)', async () => {
    await record(kysely, event('one_off'));
    expect((await committed(db.sql)).events).toEqual(['one_off']);
  });
});
