/**
 * The SQL entry point, posthog_outbox.record(event jsonb) (migrations/0000_baseline.sql, docs/sql.md), against
 * real PostgreSQL: it stores exactly the row record() stores, refuses what record() refuses with the same
 * field and code (SQLSTATE 22023), commits and rolls back with the caller's transaction; the trigger of
 * docs/sql.md (run verbatim) records an event the worker delivers with the same shape as record()'s; the
 * Python example runs as written.
 */
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import type postgres from 'postgres';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { CaptureServer } from '../dev/capture-server.ts';
import type { OutboxError } from '../src/errors/errors.ts';
import type { OutboxEvent } from '../src/record/event.ts';
import { migrateOutbox } from '../src/outbox/apply.ts';
import { record } from '../src/record/record.ts';
import { RECORD_COLUMNS } from '../src/outbox/columns.ts';
import { richEvent } from './clients/orm-suite.ts';
import type { TestDatabase } from './support/db.ts';
import { docBlock } from './support/docs.ts';
import { inProcessWorkers, outboxEmpty } from './support/worker.ts';

let db: TestDatabase;
let capture: CaptureServer;
const startWorker = inProcessWorkers('phc_sql_record', (fixture) => ({ db, capture } = fixture), { backoff: { baseMs: 100, maxMs: 1_000 } });

/** Calls the SQL function with `event` as JSON (what JSON.stringify makes of it: Dates as ISO strings). */
async function recordSql(sql: postgres.Sql | postgres.TransactionSql, event: unknown, schema = 'posthog_outbox'): Promise<string> {
  const [row] = await sql.unsafe<{ uuid: string }[]>(`SELECT "${schema}".record($1::text::jsonb) AS uuid`, [
    event === undefined ? null : JSON.stringify(event),
  ]);
  return row!.uuid;
}

/** The outbox's rows in write order, every column record() writes but the uuid, as PostgreSQL's text. */
async function storedRows(): Promise<Record<string, string | null>[]> {
  const columns = RECORD_COLUMNS.filter(([name]) => name !== 'uuid').map(([name]) => `"${name}"::text AS "${name}"`);
  return db.sql.unsafe(`SELECT ${columns.join(', ')} FROM posthog_outbox.outbox ORDER BY uuid`);
}

/** What the SQL function's refusal says, in OutboxError's terms: its DETAIL is the code, its column the field. */
async function sqlRefusal(event: unknown): Promise<{ code: string; field: string; message: string; sqlstate: string }> {
  const error = (await db.sql
    .begin((tx) => recordSql(tx, event))
    .then(
      () => undefined,
      (e: unknown) => e,
    )) as postgres.PostgresError | undefined;
  if (!error) throw new Error(`the SQL function accepted ${JSON.stringify(event).slice(0, 200)}`);
  return { code: error.detail!, field: error.column_name!, message: error.message, sqlstate: error.code };
}

async function recordRefusal(event: OutboxEvent): Promise<OutboxError> {
  const error = await db.sql.begin((tx) => record(tx, event)).catch((e: unknown) => e as OutboxError);
  if (!Array.isArray(error)) return error;
  throw new Error('record() accepted it');
}

const base = (): OutboxEvent => ({
  event: 'report_exported',
  distinctId: 'user_1',
  properties: { format: 'csv' },
  groups: { organization: 'org_1' },
  profiles: { user: { id: 'user_1', fields: { email: 'a@example.com' } }, organization: { id: 'org_1', fields: { name: 'Acme' } } },
});

const nested = (depth: number): unknown => (depth === 0 ? [] : [nested(depth - 1)]);

beforeEach(async () => {
  await db.sql`TRUNCATE posthog_outbox.outbox`;
});

describe('posthog_outbox.record(event jsonb) stores exactly the row record() stores', () => {
  it.each([
    ['rich events: quotes, unicode, numbers, Dates, all three profiles, a millisecond timestamp', Array.from({ length: 6 }, (_, i) => richEvent(i))],
    ['the base event, without a timestamp (the time of the call)', [base()]],
    ['the bounds of every limit', [{ ...base(), distinctId: 'x'.repeat(200), timestamp: new Date('1970-01-01T00:00:00.000Z') }]],
    ['UTF-16 lengths at the limits', [{ ...base(), distinctId: '😀'.repeat(100), profiles: { automation: { id: `${'😀'.repeat(94)}x`, fields: {} } } }]],
    [
      'an array 64 levels below the properties, the deepest accepted',
      [{ ...base(), properties: { deep: nested(62) }, timestamp: new Date('9999-12-31T23:59:59.999Z') }],
    ],
  ])('%s', async (_name, events) => {
    const before = Date.now();
    await db.sql.begin((tx) => record(tx, events));
    const expected = await storedRows();
    await db.sql`TRUNCATE posthog_outbox.outbox`;
    const uuids = await db.sql.begin(async (tx) => {
      const out: string[] = [];
      for (const event of events) out.push(await recordSql(tx, event));
      return out;
    });
    const rows = await storedRows();
    for (const [i, event] of events.entries()) {
      if (event.timestamp !== undefined) continue;
      // the time of the call, as record()'s, kept to the millisecond: equal up to the two calls' distance
      expect(Date.parse(rows[i]!.timestamp!)).toBeGreaterThanOrEqual(before);
      expect(Date.parse(rows[i]!.timestamp!)).toBeLessThanOrEqual(Date.now());
      rows[i]!.timestamp = expected[i]!.timestamp!;
    }
    expect(rows).toEqual(expected);
    const [{ version } = { version: 0 }] = await db.sql<{ version: number }[]>`SELECT current_setting('server_version_num')::int AS version`;
    if (version >= 180000) expect(uuids.every((u) => u[14] === '7')).toBe(true); // UUIDv7, as record()'s
  });

  it('defaults properties, groups and profiles to {} and leaves out absent profiles, as record() with empty ones', async () => {
    const at = new Date('2026-01-02T03:04:05.678Z');
    await db.sql.begin((tx) => record(tx, { event: 'e', distinctId: 'u', properties: {}, groups: {}, profiles: {}, timestamp: at }));
    const expected = await storedRows();
    await db.sql`TRUNCATE posthog_outbox.outbox`;
    await recordSql(db.sql, { event: 'e', distinctId: 'u', timestamp: at });
    await recordSql(db.sql, { event: 'e', distinctId: 'u', properties: null, groups: null, profiles: { user: null }, timestamp: at });
    expect(await storedRows()).toEqual([...expected, ...expected]);
  });

  it('keeps milliseconds of a timestamp with microseconds, and reads an offset', async () => {
    await recordSql(db.sql, { ...base(), timestamp: '2026-01-02T05:04:05.678999+02:00' });
    expect((await storedRows())[0]!.timestamp).toBe('2026-01-02 03:04:05.678+00');
  });
});

/** [what, the event]: record() and the SQL function refuse each with the same field and code. */
const REFUSED: [string, OutboxEvent, 'same message' | 'same field'][] = [
  ['an empty event name', { ...base(), event: '' }, 'same message'],
  ['a blank distinct id (JavaScript’s white space)', { ...base(), distinctId: ' \u3000\u00a0\ufeff\n' }, 'same message'],
  ['a number as distinct id', { ...base(), distinctId: 42 as never }, 'same message'],
  ['a distinct id of 201 characters', { ...base(), distinctId: 'x'.repeat(201) }, 'same message'],
  ['a distinct id of 101 emoji (202 UTF-16 units)', { ...base(), distinctId: '😀'.repeat(101) }, 'same message'],
  ['an event name of 201 characters', { ...base(), event: 'e'.repeat(201) }, 'same message'],
  ['properties that are an array', { ...base(), properties: [1] as never }, 'same field'],
  ['a group key that is a number', { ...base(), groups: { organization: 7 as never } }, 'same message'],
  ['an empty group key', { ...base(), groups: { 'org type': '' } }, 'same message'],
  ['a profile without an id', { ...base(), profiles: { user: { fields: {} } as never } }, 'same message'],
  ['a profile field that is an object', { ...base(), profiles: { user: { id: 'u', fields: { x: {} as never } } } }, 'same field'],
  ['a profile field that is null', { ...base(), profiles: { organization: { id: 'o', fields: { 'a b': null as never } } } }, 'same field'],
  ['profile fields that are an array', { ...base(), profiles: { user: { id: 'u', fields: [] as never } } }, 'same field'],
  ['an automation id of 190 characters', { ...base(), profiles: { automation: { id: 'a'.repeat(190), fields: {} } } }, 'same message'],
  ['a timestamp before 1970', { ...base(), timestamp: new Date('1969-12-31T23:59:59.999Z') }, 'same message'],
  ['a timestamp after 9999 (+010000-...)', { ...base(), timestamp: new Date('+010000-01-01T00:00:00.000Z') }, 'same field'],
  ['an array 65 levels below the properties', { ...base(), properties: { deep: nested(63) } }, 'same field'],
  ['an event over 1 MB', { ...base(), properties: { text: 'x'.repeat(1_000_000) } }, 'same field'],
  ['an $ai_ event over 8 MiB', { ...base(), event: '$ai_generation', properties: { text: 'x'.repeat(8_400_000) } }, 'same field'],
];

describe('refuses what record() refuses, with the same field and code, and writes nothing', () => {
  it.each(REFUSED)('%s', async (_name, event, same) => {
    const expected = await recordRefusal(event);
    const refusal = await sqlRefusal(event);
    expect(refusal.sqlstate).toBe('22023');
    expect(refusal.code).toBe(expected.code);
    // record() names the deepest container at fault; the SQL function the properties
    expect(expected.field.startsWith(refusal.field)).toBe(true);
    if (same === 'same message') expect(refusal.message).toBe(expected.message);
    expect(await storedRows()).toEqual([]);
  });

  it('accepts an $ai_ event over 1 MB, as record() does', async () => {
    const big = { ...base(), event: '$ai_generation', properties: { text: 'x'.repeat(2_000_000) } };
    await db.sql.begin((tx) => record(tx, big));
    await recordSql(db.sql, big);
    expect((await storedRows()).map((r) => r.event)).toEqual(['$ai_generation', '$ai_generation']);
  });

  it.each([
    ['no object', 'null', 'event', 'invalid', 'event: must be a JSON object, got null'],
    ['an array', [1], 'event', 'invalid', 'event: must be a JSON object, got an array'],
    [
      'a key of another spelling',
      { event: 'e', distinct_id: 'u' },
      'event.distinct_id',
      'invalid',
      'event.distinct_id: is not a field of an event (event, distinctId, properties, groups, timestamp, profiles)',
    ],
    [
      'an unknown profile',
      { event: 'e', distinctId: 'u', profiles: { team: { id: 't' } } },
      'event.profiles.team',
      'invalid',
      'event.profiles.team: is not a profile (user, automation, organization)',
    ],
    [
      'an unknown key in a profile',
      { event: 'e', distinctId: 'u', profiles: { user: { id: 'u', email: 'a@b' } } },
      'event.profiles.user.email',
      'invalid',
      'event.profiles.user.email: is not a field of a profile (id, fields)',
    ],
    [
      'a timestamp that is a number',
      { event: 'e', distinctId: 'u', timestamp: 1_700_000_000_000 },
      'event.timestamp',
      'invalid',
      'event.timestamp: must be an ISO 8601 string, got 1700000000000',
    ],
    [
      'a timestamp that is no time',
      { event: 'e', distinctId: 'u', timestamp: 'soon' },
      'event.timestamp',
      'invalid',
      'event.timestamp: must be an ISO 8601 string, got "soon"',
    ],
    [
      'infinity',
      { event: 'e', distinctId: 'u', timestamp: 'infinity' },
      'event.timestamp',
      'invalid',
      'event.timestamp: infinity is outside 1970-01-01..9999-12-31 (UTC)',
    ],
  ])('and, from SQL, %s', async (_name, event, field, code, message) => {
    expect(await sqlRefusal(event === 'null' ? null : event)).toEqual({ code, field, message, sqlstate: '22023' });
  });
});

describe('in the caller’s transaction', () => {
  it('commits and rolls back with the caller’s statements; a refusal aborts it, a savepoint keeps it going', async () => {
    await db.sql`CREATE TABLE IF NOT EXISTS reports (id text PRIMARY KEY, format text)`;
    await db.sql`TRUNCATE reports`;
    await db.sql.begin(async (tx) => {
      await tx`INSERT INTO reports VALUES ('kept', 'csv')`;
      await recordSql(tx, { ...base(), event: 'kept' });
      await tx.savepoint((sp) => recordSql(sp, { ...base(), event: '' })).catch((e: postgres.PostgresError) => expect(e.column_name).toBe('event.event'));
      await recordSql(tx, { ...base(), event: 'after_refusal' });
    });
    const lost = new Error('handler failed');
    await expect(
      db.sql.begin(async (tx) => {
        await tx`INSERT INTO reports VALUES ('lost', 'csv')`;
        await recordSql(tx, { ...base(), event: 'rolled_back' });
        throw lost;
      }),
    ).rejects.toBe(lost);
    await expect(db.sql.begin((tx) => Promise.all([recordSql(tx, { ...base(), event: 'aborted' }), recordSql(tx, { ...base(), event: '' })]))).rejects.toThrow(
      'event.event: is required',
    );
    expect((await storedRows()).map((r) => r.event)).toEqual(['kept', 'after_refusal']);
    expect((await db.sql`SELECT id FROM reports`).map((r) => r.id)).toEqual(['kept']);
  });

  it('writes to the outbox of the schema it was migrated to', async () => {
    await migrateOutbox(db.sql, { schema: 'other_outbox' });
    const uuid = await recordSql(db.sql, base(), 'other_outbox');
    expect(await db.sql`SELECT uuid FROM other_outbox.outbox`).toEqual([{ uuid }]);
    expect(await storedRows()).toEqual([]);
  });
});

describe('the trigger of docs/sql.md', () => {
  beforeAll(async () => {
    await db.sql`CREATE TABLE signups (user_id text PRIMARY KEY, email text, plan text, organization_id text, created_at timestamptz NOT NULL DEFAULT now())`;
    await db.sql.unsafe(docBlock('docs/sql.md', 'sql trigger'));
  });
  afterAll(async () => {
    await db.sql`DROP TABLE signups`;
  });

  it('records in the inserting transaction; the worker delivers its event with the shape of record()’s', async () => {
    const [row] = await db.sql<{ created_at: Date }[]>`
      INSERT INTO signups (user_id, email, plan, organization_id) VALUES ('user_7', 'ada@example.com', 'pro', 'org_7') RETURNING created_at`;
    await expect(
      db.sql.begin(async (tx) => {
        await tx`INSERT INTO signups (user_id, email, plan, organization_id) VALUES ('user_8', 'bob@example.com', 'free', 'org_7')`;
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    // the same event, through record()
    const [viaRecord] = await db.sql.begin((tx) =>
      record(tx, {
        event: 'user_signed_up',
        distinctId: 'user_7',
        properties: { plan: 'pro', $groups: { organization: 'org_7' } },
        groups: { organization: 'org_7' },
        timestamp: row!.created_at,
        profiles: { user: { id: 'user_7', fields: { email: 'ada@example.com' } } },
      }),
    );
    expect(await storedRows()).toHaveLength(2);
    await startWorker();
    await capture.waitFor((events) => events.filter((e) => e.event === 'user_signed_up').length >= 2, { timeoutMs: 20_000 });
    await outboxEmpty(db.sql);
    const delivered = capture.events.filter((e) => e.event === 'user_signed_up');
    expect(delivered).toHaveLength(2);
    const [fromTrigger, fromRecord] = delivered[0]!.uuid === viaRecord ? [delivered[1]!, delivered[0]!] : [delivered[0]!, delivered[1]!];
    expect(fromRecord.uuid).toBe(viaRecord);
    expect({ ...fromTrigger, uuid: undefined }).toEqual({ ...fromRecord, uuid: undefined });
    expect(fromTrigger.properties).toMatchObject({ plan: 'pro', $groups: { organization: 'org_7' } });
    expect(capture.events.map((e) => e.event).sort()).toEqual(['$identify', 'user_signed_up', 'user_signed_up']);
  });
});

/** A Python 3 with psycopg 3 (Debian's python3-psycopg; `.ci/run` installs it), or undefined. */
function pythonWithPsycopg(): string | undefined {
  return ['python3', '/usr/bin/python3'].find((python) => spawnSync(python, ['-c', 'import psycopg'], { stdio: 'ignore' }).status === 0);
}
const python = pythonWithPsycopg();

// In CI the example runs (and fails clearly without psycopg); on a developer machine without it, it is skipped.
describe.skipIf(!python && !process.env.CI)('the Python example of docs/sql.md', () => {
  it('records its event with its own row, and reads a refusal’s field and code', async () => {
    expect(python, 'a python3 with psycopg 3 (apt-get install python3-psycopg)').toBeDefined();
    await db.sql`CREATE TABLE IF NOT EXISTS reports (id text PRIMARY KEY, format text)`;
    await db.sql`TRUNCATE reports`;
    const { stdout } = await promisify(execFile)(python!, ['-c', docBlock('docs/sql.md', 'python psycopg')], {
      env: { ...process.env, DATABASE_URL: db.url },
      timeout: 30_000,
    });
    const [{ uuid } = { uuid: '' }] = await db.sql<{ uuid: string }[]>`SELECT uuid::text FROM posthog_outbox.outbox`;
    expect(stdout).toBe(`recorded ${uuid}\nrefused event.distinctId required\n`);
    expect((await storedRows()).map((r) => [r.event, r.distinct_id, r.user_profile])).toEqual([['report_exported', 'user_42', '{"email": "ada@example.com"}']]);
    expect((await db.sql`SELECT id FROM reports`).map((r) => r.id)).toEqual(['report_1']);
  });
});
