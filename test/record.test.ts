import { getTableColumns, sql as dsql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/postgres-js';
import { drizzle as drizzleProxy } from 'drizzle-orm/pg-proxy';
import { pgTable, serial, text } from 'drizzle-orm/pg-core';
import postgres from 'postgres';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OutboxError } from '../src/errors/errors.ts';
import type { OutboxEvent } from '../src/record/event.ts';
import { migrateOutbox } from '../src/outbox/apply.ts';
import { record, recordIdentifies } from '../src/record/record.ts';
import { outbox, outboxSchema } from '../src/outbox/schema.ts';
import { MAX_EVENT_BYTES } from '../src/record/validate.ts';
import { IDENTITY_COLUMNS, RECORD_COLUMNS } from '../src/outbox/columns.ts';
import { VALUES_ROWS_LIMIT } from '../src/record/record.sql.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { queuedEvents } from './support/queued.ts';
import { outsideMessage, TIMESTAMP_EDGES } from './support/timestamps.ts';

const messages = pgTable('messages', { id: serial('id').primaryKey(), body: text('body').notNull() });

function event(overrides: Partial<OutboxEvent> = {}): OutboxEvent {
  return {
    event: 'chat_started',
    distinctId: 'user_1',
    properties: { $groups: { organization: 'org_1' }, organization_id: 'org_1', thread_id: 't1' },
    groups: { organization: 'org_1' },
    profiles: {
      user: { id: 'user_1', fields: { email: 'a@example.com' } },
      organization: { id: 'org_1', fields: { name: 'Acme' } },
    },
    ...overrides,
  };
}

let db: TestDatabase;
let queries = 0;
/** A plain postgres.js client (drizzle changes the serializers of a client it wraps, so it gets its own). */
let client: postgres.Sql;
let ormClient: postgres.Sql;
let orm: ReturnType<typeof drizzle>;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.sql`CREATE TABLE messages (id serial PRIMARY KEY, body text NOT NULL)`;
  // A client that counts the statements it sends, to check round trips.
  client = postgres(db.url, { max: 20, onnotice: () => {}, debug: () => void queries++ });
  ormClient = postgres(db.url, { max: 20, onnotice: () => {}, debug: () => void queries++ });
  orm = drizzle(ormClient);
});

afterAll(async () => {
  await client.end();
  await ormClient.end();
  await db.drop();
});

beforeEach(async () => {
  await db.sql`TRUNCATE messages, posthog_outbox.outbox`;
});

/** What the outbox holds, a row per event. */
function outboxRows() {
  return queuedEvents(db.sql);
}

describe('record in a drizzle transaction', () => {
  it('commits the event with the caller’s rows, with a UUIDv7 and the write time', async () => {
    const before = Date.now();
    const [uuid] = await orm.transaction(async (tx) => {
      await tx.insert(messages).values({ body: 'hello' });
      return record(tx, event());
    });
    const rows = await outboxRows();
    expect(rows).toHaveLength(1);
    const row = rows[0]!;
    expect(row.uuid).toBe(uuid);
    expect(row.uuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(row.event).toBe('chat_started');
    expect(row.distinctId).toBe('user_1');
    expect(row.properties).toEqual({ $groups: { organization: 'org_1' }, organization_id: 'org_1', thread_id: 't1' });
    expect(row.groups).toEqual({ organization: 'org_1' });
    expect(row.userId).toBe('user_1');
    expect(row.userProfile).toEqual({ email: 'a@example.com' });
    expect(row.organizationId).toBe('org_1');
    expect(row.organizationProfile).toEqual({ name: 'Acme' });
    expect(row.automationId).toBeNull();
    expect(row.automationProfile).toBeNull();
    expect(row.attempts).toBe(0);
    expect(row.timestamp!.getTime()).toBeGreaterThanOrEqual(before - 1);
    expect(row.timestamp!.getTime()).toBeLessThanOrEqual(Date.now());
  });

  it('keeps the timestamp the event carries (when it happened)', async () => {
    const at = new Date('2026-01-02T03:04:05.678Z');
    await orm.transaction((tx) => record(tx, event({ timestamp: at })));
    expect((await outboxRows())[0]!.timestamp!.toISOString()).toBe(at.toISOString());
  });

  it('writes nothing when the transaction rolls back', async () => {
    await expect(
      orm.transaction(async (tx) => {
        await tx.insert(messages).values({ body: 'hello' });
        await record(tx, event());
        tx.rollback();
      }),
    ).rejects.toThrow();
    expect(await outboxRows()).toEqual([]);
    expect(await orm.select().from(messages)).toEqual([]);
  });

  it('writes nothing when the handler throws after recording', async () => {
    await expect(
      orm.transaction(async (tx) => {
        await record(tx, event());
        await tx.insert(messages).values({ body: 'hello' });
        throw new Error('handler failed later');
      }),
    ).rejects.toThrow('handler failed later');
    expect(await outboxRows()).toEqual([]);
  });

  it('writes nothing when a later statement of the transaction fails in the database', async () => {
    await expect(
      orm.transaction(async (tx) => {
        await record(tx, event());
        await tx.execute(dsql`INSERT INTO messages (body) VALUES (NULL)`);
      }),
    ).rejects.toThrow();
    expect(await outboxRows()).toEqual([]);
  });

  it('works on a plain drizzle database for one-off writes', async () => {
    await record(orm, event());
    expect(await outboxRows()).toHaveLength(1);
  });

  it('runs its insert prepared on the transaction’s own postgres.js connection (one round trip), and rolls back with it', async () => {
    // A connection of its own: pg_prepared_statements is per session, and a pooled one may hold the statement already.
    const fresh = postgres(db.url, { max: 1, onnotice: () => {} });
    const logged: string[] = [];
    try {
      const freshOrm = drizzle(fresh, { logger: { logQuery: (query) => void logged.push(query) } });
      const outboxInserts = async (tx: Parameters<Parameters<typeof freshOrm.transaction>[0]>[0]) =>
        [...(await tx.execute<{ statement: string }>(dsql`SELECT statement FROM pg_prepared_statements`))].filter((r) =>
          r.statement.startsWith('INSERT INTO "posthog_outbox"."outbox"'),
        ).length;
      const seen: number[] = [];
      await expect(
        freshOrm.transaction(async (tx) => {
          await tx.insert(messages).values({ body: 'hello' });
          seen.push(await outboxInserts(tx));
          await record(tx, event());
          seen.push(await outboxInserts(tx));
          tx.rollback();
        }),
      ).rejects.toThrow('Rollback');
      expect(seen).toEqual([0, 1]);
      expect(await outboxRows()).toEqual([]);
      expect(await orm.select().from(messages)).toEqual([]);
      // drizzle's logger still sees the statement, as it did through drizzle's execute().
      expect(logged.filter((query) => query.startsWith('INSERT INTO "posthog_outbox"."outbox"'))).toHaveLength(1);
    } finally {
      await fresh.end();
    }
  });

  it('works through any other drizzle Postgres driver (here pg-proxy over a real connection), rollback included', async () => {
    const reserved = await db.sql.reserve();
    try {
      const proxy = drizzleProxy(async (text, params, method) => {
        const rows = await reserved.unsafe(text, params as never[]);
        return { rows: method === 'all' ? rows.map((r) => Object.values(r)) : rows };
      });
      await reserved`BEGIN`;
      await record(proxy, event());
      await reserved`ROLLBACK`;
      expect(await outboxRows()).toEqual([]);
      await record(proxy, event({ event: 'chat_ended' }));
      expect((await outboxRows()).map((r) => r.event)).toEqual(['chat_ended']);
    } finally {
      reserved.release();
    }
  });
});

describe('record in a postgres.js transaction', () => {
  it('commits with the caller’s rows', async () => {
    await client.begin(async (sql) => {
      await sql`INSERT INTO messages (body) VALUES ('hi')`;
      await record(sql, event({ event: 'automation_created' }));
    });
    const rows = await outboxRows();
    expect(rows.map((r) => r.event)).toEqual(['automation_created']);
  });

  it('writes nothing on rollback or a later error', async () => {
    await expect(
      client.begin(async (sql) => {
        await record(sql, event());
        throw new Error('later');
      }),
    ).rejects.toThrow('later');
    await expect(
      client.begin(async (sql) => {
        await record(sql, event());
        await sql`INSERT INTO messages (body) VALUES (NULL)`;
      }),
    ).rejects.toThrow();
    expect(await outboxRows()).toEqual([]);
  });

  it('works on a plain postgres.js client for one-off writes', async () => {
    await record(client, [event(), event()]);
    expect(await outboxRows()).toHaveLength(2);
  });
});

describe('batching and concurrency', () => {
  it('records many events in one statement, on both clients', async () => {
    const events = Array.from({ length: 500 }, (_, i) => event({ properties: { i } }));
    await orm.transaction(async (tx) => {
      const start = queries;
      await record(tx, events);
      expect(queries - start).toBe(1);
    });
    await client.begin(async (sql) => {
      const start = queries;
      await record(sql, events);
      expect(queries - start).toBe(1);
    });
    const rows = await outboxRows();
    expect(rows).toHaveLength(1000);
    expect(new Set(rows.map((r) => r.uuid)).size).toBe(1000);
    expect(
      rows
        .map((r) => (r.properties as { i: number }).i)
        .sort((a, b) => a - b)
        .slice(0, 3),
    ).toEqual([0, 0, 1]);
  });

  it(`stores the same events whether they go one or several per call, as events or as identify rows (VALUES, or one JSON parameter above ${VALUES_ROWS_LIMIT})`, async () => {
    const odd = (i: number) =>
      event({
        event: `e'"\\${i}`,
        properties: { i, nested: { list: [1, 'two', null, true], text: 'quote " backslash \\ unicode ☃ 𝄞' }, none: null },
        groups: i % 2 ? {} : { organization: 'org_1' },
        timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, i)),
        profiles:
          i % 3 === 0
            ? {}
            : { user: { id: `user_${i}`, fields: { email: 'a@example.com', admin: true, seats: 3 } }, automation: { id: 'a1', fields: { name: 'Nightly' } } },
      });
    const count = VALUES_ROWS_LIMIT + 1;
    const events = Array.from({ length: count }, (_, i) => odd(i));
    const identifies = (list: typeof events) => list.map((e, i) => ({ event: e, identity: { kind: 'user', id: `user_${i}`, version: 1 } }));
    const writes: [string, string, (tx: postgres.Sql) => Promise<unknown>][] = [
      [
        'one per call',
        'VALUES',
        async (tx) => {
          for (const e of events) await record(tx, e);
        },
      ],
      ['all in one call', 'json_to_recordset', (tx) => record(tx, events)],
      [
        'identify rows, a few per call',
        'VALUES',
        async (tx) => {
          for (let i = 0; i < count; i += 8) await recordIdentifies(tx, identifies(events).slice(i, i + 8));
        },
      ],
      ['identify rows, many in one call', 'json_to_recordset', (tx) => recordIdentifies(tx, identifies(events))],
    ];
    const stored: unknown[] = [];
    for (const [, shape, write] of writes) {
      await db.sql`TRUNCATE posthog_outbox.outbox`;
      const statements: string[] = [];
      const watched = postgres(db.url, { max: 1, onnotice: () => {}, debug: (_c, text) => statements.push(text) });
      await write(watched);
      await watched.end();
      const inserts = statements.filter((t) => t.includes('"outbox"'));
      expect(inserts.every((t) => t.includes(shape))).toBe(true);
      const rows = (await outboxRows()).map(({ uuid: _u, createdAt: _c, nextAttemptAt: _n, ...rest }) => rest);
      expect(rows).toHaveLength(count);
      stored.push(rows.sort((a, b) => (a.properties as { i: number }).i - (b.properties as { i: number }).i));
    }
    for (const other of stored.slice(1)) expect(other).toEqual(stored[0]);
    expect(stored[0]).toEqual(
      events.map((e) =>
        expect.objectContaining({
          event: e.event,
          properties: e.properties,
          groups: e.groups,
          timestamp: e.timestamp,
          userId: e.profiles.user?.id ?? null,
          userProfile: e.profiles.user?.fields ?? null,
          automationProfile: e.profiles.automation?.fields ?? null,
          organizationId: null,
        }),
      ),
    );
  });

  it("stores several events of one call as a row each, in one statement, returning the events' uuids in order", async () => {
    const start = queries;
    const uuids = await record(
      client,
      Array.from({ length: 101 }, (_, i) => event({ properties: { i } })),
    );
    expect(queries - start).toBe(1);
    const rows = await db.sql<
      { uuid: string; event: string; i: number }[]
    >`SELECT uuid, event, (properties->>'i')::int AS i FROM posthog_outbox.outbox ORDER BY uuid`;
    expect(rows.map((r) => r.uuid)).toEqual(uuids);
    expect(rows.map((r) => r.i)).toEqual(uuids.map((_, i) => i));
    expect(new Set(rows.map((r) => r.event))).toEqual(new Set([event().event]));
  });

  it('skips null entries (an abort the contract wants no event for) and writes nothing for none', async () => {
    const start = queries;
    expect(await record(client, null)).toEqual([]);
    expect(await record(client, [null, undefined])).toEqual([]);
    expect(queries).toBe(start);
    expect(await record(client, [null, event()])).toHaveLength(1);
    expect(await outboxRows()).toHaveLength(1);
  });

  it('gives each of 50 concurrent transactions exactly its own rows', async () => {
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, n) =>
        orm.transaction(async (tx) => {
          await tx.insert(messages).values({ body: `m${n}` });
          await record(tx, [event({ properties: { n, k: 0 } }), event({ properties: { n, k: 1 } })]);
          if (n % 5 === 0) throw new Error(`transaction ${n} fails`);
          await record(tx, event({ properties: { n, k: 2 } }));
        }),
      ),
    );
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(10);
    const rows = await outboxRows();
    const byTx = new Map<number, number[]>();
    for (const row of rows) {
      const { n, k } = row.properties as { n: number; k: number };
      byTx.set(n, [...(byTx.get(n) ?? []), k].sort());
    }
    for (let n = 0; n < 50; n++) {
      if (n % 5 === 0) expect(byTx.has(n)).toBe(false);
      else expect(byTx.get(n)).toEqual([0, 1, 2]);
    }
    expect(rows).toHaveLength(40 * 3);
  });
});

describe('stored JSON is what was passed', () => {
  it('stores unicode, nesting, Dates (as ISO strings) and drops undefined keys, exactly as JSON.stringify', async () => {
    const properties = {
      emoji: '🚀 naïve — 中文',
      nested: { list: [1, 2.5, -0.125, true, null, { deep: ['x'] }], empty: {} },
      at: new Date('2026-03-04T05:06:07.089Z'),
      gone: undefined,
      big: Number.MAX_SAFE_INTEGER,
      ['__proto__']: 'not a prototype',
    };
    Object.defineProperty(properties, '__proto__', { value: 'own key', enumerable: true });
    await record(client, event({ properties }));
    const [row] = await outboxRows();
    expect(row!.properties).toEqual(JSON.parse(JSON.stringify(properties)));
    expect(Object.keys(row!.properties!)).toContain('__proto__');
    expect(Object.keys(row!.properties!)).not.toContain('gone');
  });
});

describe('bad input throws OutboxError before any SQL, and writes nothing', () => {
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  const deep: Record<string, unknown> = {};
  let cursor = deep;
  for (let i = 0; i < 100; i++) cursor = cursor.next = {} as Record<string, unknown>;

  const cases: [string, Partial<OutboxEvent> | Record<string, unknown>, OutboxError['code'], string][] = [
    ['empty event name', { event: '' }, 'required', 'event.event'],
    ['event name too long', { event: 'e'.repeat(201) }, 'too_long', 'event.event'],
    ['missing distinct id', { distinctId: undefined as unknown as string }, 'required', 'event.distinctId'],
    ['blank distinct id', { distinctId: '   ' }, 'required', 'event.distinctId'],
    ['distinct id of 201 characters', { distinctId: 'd'.repeat(201) }, 'too_long', 'event.distinctId'],
    ['numeric distinct id', { distinctId: 42 as unknown as string }, 'invalid', 'event.distinctId'],
    ['properties not an object', { properties: [] as unknown as Record<string, unknown> }, 'invalid', 'event.properties'],
    ['NaN', { properties: { score: Number.NaN } }, 'not_serializable', 'event.properties.score'],
    ['Infinity', { properties: { nested: { x: Number.POSITIVE_INFINITY } } }, 'not_serializable', 'event.properties.nested.x'],
    ['BigInt', { properties: { n: 10n } }, 'not_serializable', 'event.properties.n'],
    ['function', { properties: { f: () => 1 } }, 'not_serializable', 'event.properties.f'],
    ['symbol', { properties: { s: Symbol('x') } }, 'not_serializable', 'event.properties.s'],
    ['undefined in an array', { properties: { list: [1, undefined] } }, 'not_serializable', 'event.properties.list[1]'],
    ['cyclic object', { properties: { c: cyclic } }, 'not_serializable', 'event.properties.c.self'],
    ['too deep', { properties: { deep } }, 'not_serializable', 'event.properties.deep' + '.next'.repeat(63)],
    ['lone surrogate', { properties: { s: 'a\ud800b' } }, 'not_serializable', 'event.properties.s'],
    ['lone surrogate in a key', { properties: { ['k\udc00']: 1 } }, 'not_serializable', 'event.properties["k\\udc00"] (key)'],
    ['NUL character', { properties: { s: 'a\u0000b' } }, 'not_serializable', 'event.properties.s'],
    ['Map', { properties: { m: new Map([[1, 2]]) } }, 'not_serializable', 'event.properties.m'],
    ['invalid Date', { properties: { d: new Date('nope') } }, 'not_serializable', 'event.properties.d'],
    ['invalid timestamp', { timestamp: new Date('nope') }, 'invalid', 'event.timestamp'],
    ['empty group key', { groups: { organization: '' } }, 'required', 'event.groups.organization'],
    ['profile without id', { profiles: { user: { id: '', fields: {} } } }, 'required', 'event.profiles.user.id'],
    ['profile field null', { profiles: { user: { id: 'u', fields: { email: null } } } }, 'invalid', 'event.profiles.user.fields.email'],
    ['larger than PostHog accepts', { properties: { blob: 'x'.repeat(MAX_EVENT_BYTES) } }, 'too_large', 'event.properties'],
    ['larger than PostHog accepts in UTF-8 bytes', { properties: { blob: 'é'.repeat(MAX_EVENT_BYTES / 2) } }, 'too_large', 'event.properties'],
    // What jsonb (and text) cannot hold, wherever it is: the worker could not settle the stored event.
    ['NUL in a nested property key', { properties: { a: { list: [{ ['k\u0000']: 1 }] } } }, 'not_serializable', 'event.properties.a.list[0]["k\\u0000"] (key)'],
    ['lone surrogate in a nested property key', { properties: { a: { ['\ud800x']: 1 } } }, 'not_serializable', 'event.properties.a["\\ud800x"] (key)'],
    ['NUL in a group type (a key of groups)', { groups: { ['org\u0000']: 'o' } }, 'not_serializable', 'event.groups["org\\u0000"] (key)'],
    ['lone surrogate in a group type', { groups: { ['\udc00']: 'o' } }, 'not_serializable', 'event.groups["\\udc00"] (key)'],
    ['NUL in a group key (a value of groups)', { groups: { organization: 'o\u0000' } }, 'not_serializable', 'event.groups.organization'],
    ['lone surrogate in a group key', { groups: { organization: 'o\ud800' } }, 'not_serializable', 'event.groups.organization'],
    [
      'NUL in a user profile field key',
      { profiles: { user: { id: 'u', fields: { ['e\u0000mail']: 'x' } } } },
      'not_serializable',
      'event.profiles.user.fields["e\\u0000mail"] (key)',
    ],
    [
      'lone surrogate in an organization profile field key',
      { profiles: { organization: { id: 'o', fields: { ['\udfffname']: 'x' } } } },
      'not_serializable',
      'event.profiles.organization.fields["\\udfffname"] (key)',
    ],
    [
      'lone surrogate in an automation profile field key',
      { profiles: { automation: { id: 'a', fields: { ['n\ud83d']: 'x' } } } },
      'not_serializable',
      'event.profiles.automation.fields["n\\ud83d"] (key)',
    ],
    ['NUL in a profile field value', { profiles: { user: { id: 'u', fields: { name: 'a\u0000' } } } }, 'not_serializable', 'event.profiles.user.fields.name'],
    ['lone surrogate in a profile id', { profiles: { organization: { id: 'o\udc00', fields: {} } } }, 'not_serializable', 'event.profiles.organization.id'],
    ['NUL in the event name', { event: 'a\u0000b' }, 'not_serializable', 'event.event'],
    ['NUL in the distinct id', { distinctId: 'u\u0000' }, 'not_serializable', 'event.distinctId'],
    // The worker identifies the persona as automation_<id>: over 200 characters, its identify would be refused.
    [
      'an automation profile id too long for its persona distinct id',
      { profiles: { automation: { id: 'a'.repeat(190), fields: { name: 'x' } } } },
      'too_long',
      'event.profiles.automation.id',
    ],
    ['a timestamp that is not a Date', { timestamp: '2026-01-01T00:00:00.000Z' as unknown as Date }, 'invalid', 'event.timestamp'],
    ...TIMESTAMP_EDGES.filter(([, , outcome]) => outcome === 'refused').map(
      ([name, timestamp]) => [`timestamp: ${name}`, { timestamp }, 'invalid', 'event.timestamp'] as (typeof cases)[number],
    ),
  ];

  it.each(cases)('%s', async (_name, overrides, code, field) => {
    await client.begin(async (sql) => {
      const start = queries;
      let thrown: unknown;
      try {
        await record(sql, [event(), event(overrides as Partial<OutboxEvent>)]);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(OutboxError);
      expect((thrown as OutboxError).code).toBe(code);
      expect((thrown as OutboxError).field).toBe(field.replace(/^event\./, 'events[1].'));
      // Structured: the message is the field and the detail, once; the detail does not name the field again.
      expect((thrown as OutboxError).message).toBe(`${(thrown as OutboxError).field}: ${(thrown as OutboxError).detail}`);
      expect((thrown as OutboxError).detail.startsWith(`${(thrown as OutboxError).field}:`)).toBe(false);
      expect(queries).toBe(start); // no SQL ran: the caller's transaction is still usable
      await sql`INSERT INTO messages (body) VALUES ('still fine')`;
    });
    expect(await outboxRows()).toEqual([]);
    expect(await orm.select().from(messages)).toHaveLength(1);
  });

  it('names a timestamp out of range and its value, e.g. events[1].timestamp: +010000-01-01T00:00:00.000Z is outside ...', async () => {
    for (const [, timestamp, outcome] of TIMESTAMP_EDGES) {
      if (outcome === 'accepted') continue;
      await expect(record(client, [event(), event({ timestamp })])).rejects.toThrow(outsideMessage('events[1].timestamp', timestamp));
    }
    expect(await outboxRows()).toEqual([]);
  });

  it('accepts the timestamp range’s bounds and stores them exactly', async () => {
    const accepted = TIMESTAMP_EDGES.filter(([, , outcome]) => outcome === 'accepted').map(([, timestamp]) => timestamp);
    expect(accepted.map((at) => at.toISOString())).toEqual(expect.arrayContaining(['1970-01-01T00:00:00.000Z', '9999-12-31T23:59:59.999Z']));
    await record(
      client,
      accepted.map((timestamp) => event({ timestamp })),
    );
    const stored = (await outboxRows()).map((row) => row.timestamp.toISOString()).sort();
    expect(stored).toEqual(accepted.map((at) => at.toISOString()).sort());
  });

  it('reports a single event’s field without an index', async () => {
    await expect(record(client, event({ distinctId: '' }))).rejects.toMatchObject({ code: 'required', field: 'event.distinctId' });
  });

  it('accepts an event just under the size limit', async () => {
    await record(client, event({ properties: { blob: 'x'.repeat(MAX_EVENT_BYTES - 2000) } }));
    expect(await outboxRows()).toHaveLength(1);
  });

  it('rejects what is not a connection', async () => {
    for (const tx of [{}, null, 'postgres://x', () => 1]) {
      await expect(record(tx as never, event())).rejects.toMatchObject({ code: 'invalid_transaction', field: 'tx' });
    }
  });

  it('rejects a malformed schema name before any SQL', async () => {
    await expect(record(client, event(), { schema: 'x"; DROP TABLE messages; --' })).rejects.toMatchObject({ code: 'invalid', field: 'schema' });
  });
});

describe('a custom Postgres schema', () => {
  it('records into the schema the outbox was migrated to', async () => {
    await migrateOutbox(db.sql, { schema: 'analytics_outbox' });
    const tables = outboxSchema('analytics_outbox');
    await orm.transaction((tx) => record(tx, event({ event: 'in_custom_schema' }), { schema: 'analytics_outbox' }));
    const rows = await queuedEvents(db.sql, 'analytics_outbox');
    expect(rows.map((r) => r.event)).toEqual(['in_custom_schema']);
    expect(await orm.select().from(tables.outbox)).toHaveLength(1);
    expect(await outboxRows()).toEqual([]);
  });
});

describe('one declaration of the columns', () => {
  it('the columns record() writes (src/outbox/columns.ts RECORD_COLUMNS, IDENTITY_COLUMNS) are the drizzle schema’s, with the same types', () => {
    const declared = new Map(Object.values(getTableColumns(outbox)).map((c) => [c.name, c.getSQLType().replace('timestamp with time zone', 'timestamptz')]));
    for (const [name, type] of [...RECORD_COLUMNS, ...IDENTITY_COLUMNS]) expect([name, declared.get(name)]).toEqual([name, type]);
  });
});
