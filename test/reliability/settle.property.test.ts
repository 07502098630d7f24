/**
 * Property-based: whatever `record()` accepts, the worker can settle. Arbitrary events, hostile near every
 * limit (NUL and lone surrogates in keys and values at any depth, in groups and profile fields; timestamps
 * around and far beyond 1970..9999; ids around 200 characters with an emoji across the edge; automation ids
 * around the persona's limit; nesting around 64 levels; numbers jsonb rewrites; sizes near PostHog's 1 MB),
 * raw or through the builders, are recorded through every client `record()` supports: postgres.js,
 * drizzle, node-postgres, Kysely, Knex, Prisma, TypeORM, Sequelize, MikroORM (one PostgreSQL database) and
 * PGlite (in-process).
 *
 * A refused case throws `OutboxError` naming a field, before any SQL: its transaction goes on and commits,
 * and the outbox holds no more rows than before. Every accepted event is then settled:
 * - on PostgreSQL by the real worker (worker/index.ts, against dev/capture-server.ts): each recorded uuid
 *   arrives exactly once, with its recorded properties and timestamp, the outbox ends empty and nothing is
 *   dead-lettered (a value the settle step cannot convert keeps its batch in the outbox, and the wait fails);
 * - on PGlite, which has no worker, by PGlite's own SQL: every stored event read back with each column
 *   converted to its type (test/support/queued.ts: jsonb, timestamptz, as the settle step converts them) and
 *   its timestamp the recorded one; and the identify the worker would queue for each profile is accepted
 *   by `record()`.
 * None of this reads the row layout: the outbox is counted by rows, and events are found by uuid.
 */
import { PGlite } from '@electric-sql/pglite';
import { EntitySchema, MikroORM } from '@mikro-orm/postgresql';
import { Sequelize } from 'sequelize';
import { DataSource } from 'typeorm';
import { drizzle } from 'drizzle-orm/postgres-js';
import { sql as dsql } from 'drizzle-orm';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import fc from 'fast-check';
import knexFactory, { type Knex } from 'knex';
import { Kysely, PostgresDialect, sql as ksql } from 'kysely';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startCaptureServer, type CaptureServer } from '../../dev/capture-server.ts';
import { identifyEvent, type ProfileKind } from '../../src/attribution/profiles.ts';
import type { OutboxEvent } from '../../src/record/event.ts';
import { OutboxError, record, toolCalled, type RunContext } from '../../src/index.ts';
import { MIGRATIONS_FOLDER } from '../../src/outbox/apply.ts';
import { MAX_EVENT_BYTES } from '../../src/record/validate.ts';
import { startWorker } from '../../worker/index.ts';
import type { TestDatabase } from '../support/db.ts';
import { queuedEvents } from '../support/queued.ts';
import { MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS } from '../support/timestamps.ts';
import { createWorkerDatabase, deadLetterRows, until } from '../support/worker.ts';
import { canonical } from '../support/json.ts';
import { generatePrisma } from '../support/prisma.ts';

/** Cases (calls of record(), one to three events each) spread over the clients. */
const CASES = Number(process.env.SETTLE_CASES ?? 600);

// ---------------------------------------------------------------------------------------------------------
// Generators. An event is built from values at the edge of what record() accepts (ids of 200 units with an
// emoji at the end, the timestamp bounds, nesting of 63 levels, numbers jsonb rewrites, near 1 MB), and about
// one in three gets one hostile change (a NUL or lone surrogate as a key or value anywhere, a timestamp out of
// range, an id one unit too long, nesting of 64, ...): about half the calls are accepted, half refused.

/** One code point: any (NUL included, rarely), mostly printable. */
const unit = fc.oneof(
  { weight: 8, arbitrary: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
);
const text = fc.oneof(
  { weight: 12, arbitrary: fc.string({ unit, maxLength: 10 }) },
  { weight: 1, arbitrary: fc.constantFrom('', ' ', '😀', '\ufeff', '\u2028', '"\\', '__proto__', 'constructor', '$set', 'a.b', '\ud83d\ude00x') },
);
const key = fc.oneof({ weight: 6, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 8 }) }, { weight: 1, arbitrary: text });

/** Ids of at most 200 UTF-16 units: short, or at the limit with an emoji across the cut of `$organization_<id>`. */
const EDGE_IDS = ['x'.repeat(200), `${'x'.repeat(198)}😀`, `${'o'.repeat(185)}😀`, `${'o'.repeat(184)}😀x`, 'a'.repeat(189)];
const id = fc.oneof(
  { weight: 20, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 12 }) },
  { weight: 3, arbitrary: fc.string({ unit, minLength: 1, maxLength: 12 }).filter((s) => s.trim() !== '') },
  { weight: 3, arbitrary: fc.constantFrom(...EDGE_IDS) },
);
/** An automation's id: `automation_<id>` must fit 200 units, so at most 189. */
const automationId = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 12 }) },
  { weight: 1, arbitrary: fc.constantFrom('a'.repeat(189), `${'a'.repeat(187)}😀`) },
);

function deep(depth: number): unknown {
  let v: unknown = 'bottom';
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { v };
  return v;
}

const number = fc.oneof(
  { weight: 4, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
  { weight: 1, arbitrary: fc.constantFrom(-0, 1e308, -1.7976931348623157e308, 5e-324, -1e-320, 2 ** 60, Number.MAX_SAFE_INTEGER + 2) },
);
const json: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 4, arbitrary: text },
    { weight: 3, arbitrary: number },
    { weight: 1, arbitrary: fc.boolean() },
    { weight: 1, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: fc.date({ noInvalidDate: true }) }, // any valid Date, sent as its ISO string (+010000-... included)
    { weight: 2, arbitrary: fc.array(tie('value'), { maxLength: 3 }) },
    { weight: 2, arbitrary: fc.dictionary(key, tie('value'), { maxKeys: 3, noNullPrototype: false }) },
  ),
})).value;
/** properties is the first level: deep(63) under one of its keys is 64 levels, the most accepted. */
const properties = fc.oneof(
  { weight: 40, arbitrary: fc.dictionary(key, json, { maxKeys: 5 }) },
  { weight: 2, arbitrary: fc.integer({ min: 60, max: 63 }).map((n) => ({ nested: deep(n) })) },
  // Near PostHog's per-event limit (the stored event, profiles included, must fit MAX_EVENT_BYTES).
  { weight: 1, arbitrary: fc.integer({ min: MAX_EVENT_BYTES - 3000, max: MAX_EVENT_BYTES - 1000 }).map((n) => ({ blob: 'x'.repeat(n) })) },
);

const MIN = MIN_TIMESTAMP_MS;
const MAX = MAX_TIMESTAMP_MS;
const timestamp = fc.oneof(
  { weight: 6, arbitrary: fc.constant(undefined) }, // record() uses the write time
  { weight: 4, arbitrary: fc.date({ min: new Date('2020-01-01T00:00:00.000Z'), max: new Date('2030-01-01T00:00:00.000Z'), noInvalidDate: true }) },
  { weight: 2, arbitrary: fc.date({ min: new Date(MIN), max: new Date(MAX), noInvalidDate: true }) },
  { weight: 2, arbitrary: fc.constantFrom(new Date(MIN), new Date(MIN + 1), new Date(MAX), new Date(MAX - 1)) },
);
/** Times record() refuses: one ms outside each bound, years 0, -1, 50, 1900, 10000, any Date outside, an invalid one. */
const badTimestamp = fc.oneof(
  fc.constantFrom(
    new Date(MIN - 1),
    new Date(MAX + 1),
    new Date('0000-06-01T00:00:00.000Z'),
    new Date('-000001-06-01T00:00:00.000Z'),
    new Date('0050-01-01T00:00:00.000Z'),
    new Date('1900-01-01T00:00:00.000Z'),
    new Date('+010000-01-01T00:00:00.000Z'),
    new Date(Number.NaN),
  ),
  fc.date({ noInvalidDate: true }).filter((d) => d.getTime() < MIN || d.getTime() > MAX),
);

const fieldValue = fc.oneof({ weight: 6, arbitrary: text }, { weight: 2, arbitrary: number }, { weight: 1, arbitrary: fc.boolean() });
const fields = fc.dictionary(key, fieldValue, { maxKeys: 4 });
const profiles = fc.record(
  { user: fc.record({ id, fields }), automation: fc.record({ id: automationId, fields }), organization: fc.record({ id, fields }) },
  { requiredKeys: [] },
);

/** Strings jsonb and text cannot hold. */
const unstorable = fc.constantFrom('\u0000', 'a\u0000b', '\ud800', 'x\udfff', '\udbffy', '\udc00\ud800', 'ok\ud83d');
/** Ids record() refuses: unstorable, one unit too long (an emoji across 200), blank. */
const badId = fc.oneof(unstorable, fc.constantFrom('x'.repeat(201), `${'x'.repeat(199)}😀`, '', '   '));

type Event = {
  event: unknown;
  distinctId: unknown;
  properties: Record<string, unknown>;
  groups: Record<string, unknown>;
  timestamp?: unknown;
  profiles: Record<string, { id: unknown; fields: Record<string, unknown> }>;
};
const KINDS = ['user', 'automation', 'organization'] as const;

/** A hostile change to an event. */
type Change = (e: Event) => void;
const kind = fc.constantFrom(...KINDS);

/** One hostile change to an event; each is something record() must refuse. */
const hostile: fc.Arbitrary<Change> = fc.oneof(
  // a key, then a value, nested in the properties
  fc.tuple(unstorable, key).map(
    ([bad, k]): Change =>
      (e) => {
        e.properties[k] = { list: [1, { [bad]: true }] };
      },
  ),
  fc.tuple(unstorable, key).map(
    ([bad, k]): Change =>
      (e) => {
        e.properties[k] = [{ deeper: [bad] }];
      },
  ),
  // a group type, then a group key
  unstorable.map(
    (bad): Change =>
      (e) => {
        e.groups[bad] = 'group_1';
      },
  ),
  badId.map(
    (bad): Change =>
      (e) => {
        e.groups.team = bad;
      },
  ),
  // a profile's field key, field value, id; an automation id too long for its persona
  fc.tuple(unstorable, kind).map(
    ([bad, k]): Change =>
      (e) => {
        e.profiles[k] = { id: 'p_1', fields: { [bad]: 'v' } };
      },
  ),
  fc.tuple(fc.oneof(unstorable, fc.constantFrom<unknown>(null, {}, [1], Number.NaN, 10n)), kind).map(
    ([bad, k]): Change =>
      (e) => {
        e.profiles[k] = { id: 'p_1', fields: { name: bad } };
      },
  ),
  fc.tuple(badId, kind).map(
    ([bad, k]): Change =>
      (e) => {
        e.profiles[k] = { id: bad, fields: { name: 'n' } };
      },
  ),
  fc.constantFrom('a'.repeat(190), `${'a'.repeat(188)}😀`).map(
    (bad): Change =>
      (e) => {
        e.profiles.automation = { id: bad, fields: { name: 'n' } };
      },
  ),
  // the event name or distinct id; the time; nesting of 65 levels and more; no JSON form; over 1 MB
  fc.tuple(badId, fc.boolean()).map(
    ([bad, name]): Change =>
      (e) => {
        if (name) e.event = bad;
        else e.distinctId = bad;
      },
  ),
  badTimestamp.map(
    (bad): Change =>
      (e) => {
        e.timestamp = bad;
      },
  ),
  fc.integer({ min: 64, max: 70 }).map(
    (n): Change =>
      (e) => {
        e.properties.nested = deep(n);
      },
  ),
  fc
    .constantFrom<unknown>(Number.NaN, Number.POSITIVE_INFINITY, 10n, undefined, () => 1)
    .map(
      (bad): Change =>
        (e) => {
          e.properties.list = [bad];
        },
    ),
  fc.constant<Change>((e) => {
    e.properties.blob = 'x'.repeat(MAX_EVENT_BYTES);
  }),
);

const rawEvent = fc
  .tuple(
    fc.record(
      { event: id, distinctId: id, properties, groups: fc.dictionary(key, id, { maxKeys: 3 }), timestamp, profiles },
      { requiredKeys: ['event', 'distinctId', 'properties', 'groups', 'profiles'] },
    ),
    fc.oneof({ weight: 2, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: hostile }),
  )
  .map(([e, change]) => () => {
    const event = e as unknown as Event;
    change?.(event);
    return event as unknown as OutboxEvent;
  });

const context = fc.record({
  organization: fc.record({ id, name: fc.option(text, { nil: undefined }) }),
  user: fc.record({ id, email: fc.option(text, { nil: undefined }) }),
  automation: fc.option(fc.record({ id: automationId }), { nil: undefined }),
});
/** An event from a public builder, `toolCalled(context, call, at)`; a refusal of the builder counts as the call's. */
const builtEvent = fc.record({ context, toolName: id, at: fc.oneof({ weight: 3, arbitrary: timestamp }, { weight: 1, arbitrary: badTimestamp }) }).map(
  ({ context: ctx, toolName, at }) =>
    () =>
      toolCalled(ctx as RunContext, { toolName, source: 'mcp', latencyMs: 3, result: { content: [] } }, at),
);

const recordable = fc.oneof({ weight: 4, arbitrary: rawEvent }, { weight: 1, arbitrary: builtEvent });

// ---------------------------------------------------------------------------------------------------------
// Clients: each runs `body` in a transaction of its own and commits; `check` runs a statement through it.

interface Client {
  name: string;
  transaction(body: (tx: unknown, check: () => Promise<unknown>) => Promise<void>): Promise<void>;
}

let db: TestDatabase;
let capture: CaptureServer;
let lite: PGlite;
const closers: (() => Promise<unknown>)[] = [];
const clients: Client[] = [];

beforeAll(async () => {
  db = await createWorkerDatabase();
  capture = await startCaptureServer({ apiKey: 'phc_settle' });
  lite = await PGlite.create();
  for (const migration of readMigrationFiles({ migrationsFolder: MIGRATIONS_FOLDER })) {
    for (const statement of migration.sql) if (statement.trim()) await lite.exec(statement);
  }

  const ormClient = postgres(db.url, { max: 2, onnotice: () => {} });
  const orm = drizzle(ormClient);
  const pool = new pg.Pool({ connectionString: db.url, max: 2 });
  const kysely = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: db.url, max: 2 }) }) });
  const knex: Knex = knexFactory({ client: 'pg', connection: db.url, pool: { min: 0, max: 2 } });
  const prismaCode = await generatePrisma();
  const prisma = await prismaCode.client(db.url);
  const dataSource = await new DataSource({ type: 'postgres', url: db.url, poolSize: 2 }).initialize();
  const sequelize = new Sequelize(db.url, { logging: false, pool: { max: 2 } });
  class Row {}
  const entities = [new EntitySchema({ class: Row, tableName: 'messages', properties: { id: { type: 'number', primary: true } } })];
  const mikroOrm = await MikroORM.init({ clientUrl: db.url, entities, pool: { max: 2 } });
  closers.push(
    () => ormClient.end(),
    () => pool.end(),
    () => kysely.destroy(),
    () => knex.destroy(),
    () => prisma.$disconnect().then(() => prismaCode.remove()),
    () => dataSource.destroy(),
    () => sequelize.close(),
    () => mikroOrm.close(),
  );
  clients.push(
    { name: 'postgres.js', transaction: (body) => db.sql.begin((tx) => body(tx, () => tx`SELECT 1`)) },
    { name: 'drizzle (postgres.js)', transaction: (body) => orm.transaction((tx) => body(tx, () => tx.execute(dsql`SELECT 1`))) },
    {
      name: 'node-postgres',
      async transaction(body) {
        const client = await pool.connect();
        try {
          await client.query('BEGIN');
          await body(client, () => client.query('SELECT 1'));
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK');
          throw error;
        } finally {
          client.release();
        }
      },
    },
    { name: 'Kysely (pg)', transaction: (body) => kysely.transaction().execute((trx) => body(trx, () => ksql`SELECT 1`.execute(trx))) },
    { name: 'Knex (pg)', transaction: (body) => knex.transaction((trx) => body(trx, () => trx.raw('SELECT 1'))) },
    { name: 'PGlite', transaction: (body) => lite.transaction((tx) => body(tx, () => tx.query('SELECT 1'))) },
    { name: 'Prisma (adapter-pg)', transaction: (body) => prisma.$transaction((tx) => body(tx, () => tx.$queryRawUnsafe('SELECT 1')), { maxWait: 20_000 }) },
    { name: 'TypeORM', transaction: (body) => dataSource.transaction((manager) => body(manager, () => manager.query('SELECT 1'))) },
    { name: 'Sequelize', transaction: (body) => sequelize.transaction((t) => body(t, () => sequelize.query('SELECT 1', { transaction: t }))) },
    { name: 'MikroORM', transaction: (body) => mikroOrm.em.transactional((em) => body(em, () => em.execute('SELECT 1'))) },
  );
}, 120_000);

afterAll(async () => {
  for (const close of closers) await close();
  await lite?.close();
  await capture?.close();
  await db?.drop();
});

async function outboxRows(client: Client): Promise<number> {
  if (client.name === 'PGlite') return (await lite.query<{ n: number }>('SELECT count(*)::int AS n FROM posthog_outbox.outbox')).rows[0]!.n;
  return (await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM posthog_outbox.outbox`)[0]!.n;
}

/** test/support/queued.ts's reading of the outbox (each column cast to its type), on PGlite. */
const liteSql = { unsafe: async (query: string) => (await lite.query(query)).rows } as unknown as postgres.Sql;

interface Accepted {
  uuid: string;
  client: string;
  /** Canonical JSON of the properties as recorded. */
  properties: string;
  /** The recorded time, when the event carried one. */
  timestamp: string | undefined;
  profiles: OutboxEvent['profiles'];
}

it(`${CASES} calls of record() with hostile events through ten clients: what is accepted is settled, what is refused names a field and writes nothing`, async () => {
  const started = Date.now();
  const accepted: Accepted[] = [];
  const outcomes = new Map(clients.map((c) => [c.name, { recorded: 0, refused: 0 }]));

  await fc.assert(
    fc.asyncProperty(fc.nat(clients.length - 1), fc.array(recordable, { minLength: 1, maxLength: 3 }), async (which, builders) => {
      const client = clients[which]!;
      const before = await outboxRows(client);
      let refusal: OutboxError | undefined;
      await client.transaction(async (tx, check) => {
        let events: OutboxEvent[];
        let uuids: string[];
        try {
          events = builders.map((build) => build());
          uuids = await record(tx as Parameters<typeof record>[0], events);
        } catch (error) {
          if (!(error instanceof OutboxError)) throw error; // any other error (a database one) is a bug
          refusal = error;
          await check(); // no SQL ran: the transaction goes on, and commits
          return;
        }
        expect(uuids).toHaveLength(events.length);
        for (const [i, event] of events.entries()) {
          accepted.push({
            uuid: uuids[i]!,
            client: client.name,
            properties: canonical(JSON.parse(JSON.stringify(event.properties))),
            timestamp: event.timestamp?.toISOString(),
            profiles: event.profiles,
          });
        }
      });
      const counts = outcomes.get(client.name)!;
      if (refusal) {
        if (process.env.SETTLE_DEBUG) console.log(refusal.code, refusal.message.slice(0, 100));
        expect(refusal.field).toBeTruthy();
        expect(await outboxRows(client)).toBe(before);
        counts.refused++;
      } else {
        counts.recorded++;
      }
    }),
    { numRuns: CASES },
  );
  const recordedMs = Date.now() - started;

  // Both outcomes well represented on every client, or the generators do not test what they claim.
  for (const [name, { recorded, refused }] of outcomes) {
    expect(recorded, `${name} recorded`).toBeGreaterThan(CASES / clients.length / 8);
    expect(refused, `${name} refused`).toBeGreaterThan(CASES / clients.length / 8);
  }

  // What was accepted reaches the edges the generators claim to cover.
  const edges = {
    'lower bound': accepted.filter((a) => a.timestamp === new Date(MIN).toISOString()).length,
    'upper bound': accepted.filter((a) => a.timestamp === new Date(MAX).toISOString()).length,
    'near 1 MB': accepted.filter((a) => a.properties.length > MAX_EVENT_BYTES - 4000).length,
    'organization id cut at an emoji': accepted.filter((a) => a.profiles.organization?.id === EDGE_IDS[2]).length,
    'automation id of 189': accepted.filter((a) => a.profiles.automation?.id.length === 189).length,
  };
  for (const [edge, n] of Object.entries(edges)) expect(n, `accepted events at the edge: ${edge}`).toBeGreaterThan(0);

  // PostgreSQL: the real worker settles every accepted event.
  const onServer = accepted.filter((a) => a.client !== 'PGlite');
  const errors: string[] = [];
  const worker = await startWorker({
    databaseUrl: db.url,
    posthog: { apiKey: 'phc_settle', host: capture.url },
    backoff: { baseMs: 100, maxMs: 500 },
    logger: { info() {}, warn() {}, error: (object, message) => void errors.push(`${message ?? ''} ${JSON.stringify(object).slice(0, 300)}`) },
  });
  try {
    await until(
      async () => (await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM posthog_outbox.outbox`)[0]!.n,
      (n) => n === 0,
      { timeoutMs: 45_000, what: 'the worker to settle every recorded event (a stored value it cannot convert keeps its batch in the outbox)' },
    ).catch(async (error: Error) => {
      const left = await db.sql`SELECT uuid, attempts, last_error FROM posthog_outbox.outbox ORDER BY uuid LIMIT 5`;
      throw new Error(
        `${error.message}\noutbox rows left (first 5): ${JSON.stringify(left)}\nworker: ${JSON.stringify(worker.totals)}, ` +
          `${capture.events.length} events received, ${errors.length} errors logged, the last: ${errors.at(-1)}`,
      );
    });
  } finally {
    await worker.stop(10_000);
  }
  expect(await deadLetterRows(db.sql)).toEqual([]);
  const arrivals = new Map<string, number>();
  for (const e of capture.events) arrivals.set(e.uuid!, (arrivals.get(e.uuid!) ?? 0) + 1);
  const received = new Map(capture.events.map((e) => [e.uuid!, e]));
  for (const event of onServer) {
    expect(arrivals.get(event.uuid), `${event.uuid} (${event.client}) arrivals`).toBe(1);
    const got = received.get(event.uuid)!;
    const keys = Object.keys(JSON.parse(event.properties) as object);
    expect(canonical(Object.fromEntries(keys.map((k) => [k, got.properties[k]])))).toBe(event.properties);
    if (event.timestamp) expect(got.timestamp).toBe(event.timestamp);
  }

  // PGlite: every stored event converts to its typed columns, with the recorded time and properties.
  const onLite = accepted.filter((a) => a.client === 'PGlite');
  const stored = new Map((await queuedEvents(liteSql)).map((row) => [row.uuid, row]));
  expect(stored.size).toBe(onLite.length);
  for (const event of onLite) {
    const row = stored.get(event.uuid);
    expect(row, event.uuid).toBeDefined();
    expect(canonical(row!.properties)).toBe(event.properties);
    if (event.timestamp) expect(new Date(row!.timestamp).toISOString()).toBe(event.timestamp);
    // The identifies the worker would queue for its profiles are events record() accepts.
    for (const kind of ['user', 'automation', 'organization'] as ProfileKind[]) {
      const snapshot = event.profiles[kind];
      const identify = snapshot && identifyEvent(kind, snapshot.id, snapshot.fields, new Date());
      if (identify) await lite.transaction((tx) => record(tx, identify));
    }
  }

  const summary = [...outcomes].map(([name, { recorded, refused }]) => `${name} ${recorded}/${refused}`).join(', ');
  console.log(
    `settle property: ${CASES} calls (recorded/refused: ${summary}); ${accepted.length} events accepted (at the edges: ${JSON.stringify(edges)}), ${onServer.length} delivered by the worker, ${onLite.length} converted on PGlite; recording ${recordedMs} ms, total ${Date.now() - started} ms`,
  );
}, 180_000);
