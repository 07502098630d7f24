/**
 * `backfillProfiles` of `posthog-outbox/ops` called as an application's script would (no child process),
 * against real PostgreSQL with application tables: outcomes and progress through the callbacks, stopping by
 * an AbortSignal and resuming, dry run, the refusal to resume a changed query, one backfill at a time, and
 * bad options refused before any SQL. The command's own behaviour is test/cli/backfill.test.ts.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OutboxError } from '../src/errors/errors.ts';
import { type BackfillOptions, type BackfillOutcome, type BackfillProgress, backfillProfiles, withConnection } from '../src/ops/index.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';

const USERS = 'SELECT id, email, name FROM app.users';
const ORGS = 'SELECT id, name, slug FROM app.orgs';
const AUTOMATIONS = 'SELECT id, title AS name, owner_id AS owner_user_id, org_id AS organization_id FROM app.automations';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
  await db.sql.unsafe(`
    CREATE SCHEMA app;
    CREATE TABLE app.users (id bigint PRIMARY KEY, email text, name text);
    CREATE TABLE app.orgs (id text PRIMARY KEY, name text, slug text);
    CREATE TABLE app.automations (id text PRIMARY KEY, title text, owner_id bigint, org_id text);
    -- 100 users; every 10th has no known field (nothing to set)
    INSERT INTO app.users SELECT i, CASE WHEN i % 10 = 0 THEN NULL ELSE 'u' || i || '@example.com' END, NULL FROM generate_series(1, 100) AS i;
    INSERT INTO app.orgs SELECT 'org_' || i, 'Org ' || i, NULL FROM generate_series(1, 7) AS i;
    INSERT INTO app.automations SELECT 'auto_' || i, NULL, i, 'org_1' FROM generate_series(1, 3) AS i;
  `);
});
afterAll(async () => db?.drop());
beforeEach(async () => {
  await db.sql`TRUNCATE posthog_outbox.outbox, posthog_outbox.backfills, posthog_outbox.identities`;
});

const outboxRows = async () => (await db.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM posthog_outbox.outbox`)[0]!.n;
const state = () => db.sql`SELECT entity, last_id, enqueued, finished_at IS NOT NULL AS finished FROM posthog_outbox.backfills ORDER BY entity`;

describe('backfillProfiles', () => {
  it('identifies every profile once, reporting progress after each page and each outcome as it is done', async () => {
    const progress: BackfillProgress[] = [];
    const heard: BackfillOutcome[] = [];
    const result = await backfillProfiles(db.sql, {
      queries: { automations: AUTOMATIONS, users: `${USERS};`, organizations: ORGS },
      batchSize: 40,
      onProgress: (p) => progress.push(p),
      onOutcome: (o) => heard.push(o),
    });
    expect(result.stopped).toBe(false);
    expect(result.outcomes.map(({ ms: _, ...o }) => o)).toEqual([
      { entity: 'users', enqueued: 90, unchanged: 0, skipped: 10, resumedAfter: null, previously: 0 },
      { entity: 'organizations', enqueued: 7, unchanged: 0, skipped: 0, resumedAfter: null, previously: 0 },
      { entity: 'automations', enqueued: 3, unchanged: 0, skipped: 0, resumedAfter: null, previously: 0 },
    ]);
    expect(heard).toEqual(result.outcomes);
    const users = progress.filter((p) => p.entity === 'users');
    expect(users.map((p) => [p.rows, p.total, p.enqueued, p.skipped])).toEqual([
      [0, 100, 0, 0],
      [40, 100, 36, 4],
      [80, 100, 72, 8],
      [100, 100, 90, 10],
    ]);
    expect(await outboxRows()).toBe(100);
    expect(await state()).toEqual([
      { entity: 'automations', last_id: 'auto_3', enqueued: 3, finished: true },
      { entity: 'organizations', last_id: 'org_7', enqueued: 7, finished: true },
      { entity: 'users', last_id: '100', enqueued: 90, finished: true },
    ]);

    // a new pass: what PostHog was told unchanged within the refresh interval is not sent again, unless forced
    const again = await backfillProfiles(db.sql, { queries: { organizations: ORGS } });
    expect(again.outcomes[0]).toMatchObject({ enqueued: 0, unchanged: 7 });
    const forced = await backfillProfiles(db.sql, { queries: { organizations: ORGS }, force: true });
    expect(forced.outcomes[0]).toMatchObject({ enqueued: 7, unchanged: 0 });
  });

  it('stops after the current page when the signal aborts, and the next run resumes there without enqueueing a profile twice', async () => {
    const stop = new AbortController();
    const options: BackfillOptions = { queries: { users: USERS, organizations: ORGS }, batchSize: 10 };
    const first = await backfillProfiles(db.sql, { ...options, signal: stop.signal, onProgress: (p) => p.rows >= 30 && stop.abort() });
    expect(first.stopped).toBe(true);
    expect(first.outcomes).toHaveLength(1); // organizations not started
    expect(first.outcomes[0]).toMatchObject({ entity: 'users', enqueued: 27, skipped: 3 });
    expect(await state()).toEqual([{ entity: 'users', last_id: '30', enqueued: 27, finished: false }]);

    const resumed = await backfillProfiles(db.sql, options);
    expect(resumed.stopped).toBe(false);
    expect(resumed.outcomes[0]).toMatchObject({ entity: 'users', enqueued: 63, resumedAfter: '30', previously: 27 });
    expect(await outboxRows()).toBe(90 + 7);
    const distinct = await db.sql`SELECT count(DISTINCT distinct_id)::int AS n FROM posthog_outbox.outbox WHERE event = '$identify'`;
    expect(distinct).toEqual([{ n: 90 }]);
  });

  it('a dry run counts and writes nothing', async () => {
    const result = await backfillProfiles(db.sql, { queries: { users: USERS, organizations: ORGS }, dryRun: true });
    expect(result.outcomes.map((o) => [o.entity, o.enqueued, o.skipped])).toEqual([
      ['users', 90, 10],
      ['organizations', 7, 0],
    ]);
    expect(await outboxRows()).toBe(0);
    expect(await state()).toEqual([]);
    expect(await db.sql`SELECT count(*)::int AS n FROM posthog_outbox.identities`).toEqual([{ n: 0 }]);
  });

  it('refuses to resume an interrupted pass whose query changed, unless restart', async () => {
    await db.sql`INSERT INTO posthog_outbox.backfills (entity, query_hash, last_id, enqueued) VALUES ('users', 'other-query', '50', 45)`;
    const refused = await backfillProfiles(db.sql, { queries: { users: USERS } }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OutboxError);
    expect(refused).toMatchObject({ code: 'cannot_resume', field: 'users query' });
    expect((refused as OutboxError).message).toMatch(/cannot be resumed: pass restart: true to start over$/);
    expect(await outboxRows()).toBe(0);
    const restarted = await backfillProfiles(db.sql, { queries: { users: USERS }, restart: true });
    expect(restarted.outcomes[0]).toMatchObject({ enqueued: 90, resumedAfter: null, previously: 0 });
  });

  it('a query that fails or returns a column its kind does not have throws OutboxError naming the query; a query cannot write tables', async () => {
    await db.sql.unsafe(`CREATE OR REPLACE FUNCTION app.sneaky() RETURNS int LANGUAGE sql AS $$ INSERT INTO app.orgs VALUES ('x', 'X') RETURNING 1 $$`);
    for (const [queries, field, message] of [
      [{ users: 'SELECT id, email AS mail FROM app.users' }, 'users query', /"mail"; it may return only id, email, name/],
      [{ organizations: 'SELEC id FROM app.orgs' }, 'organizations query', /syntax error/],
      [{ organizations: `${ORGS} WHERE app.sneaky() IS NOT NULL` }, 'organizations query', /read-only transaction/],
    ] as const) {
      const error = await backfillProfiles(db.sql, { queries }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(OutboxError);
      expect((error as OutboxError).field).toBe(field);
      expect((error as OutboxError).message).toMatch(message);
    }
    expect(await db.sql`SELECT count(*)::int AS n FROM app.orgs WHERE id = 'x'`).toEqual([{ n: 0 }]);
    expect(await outboxRows()).toBe(0);
  });

  it('runs one backfill at a time per schema', async () => {
    const holder = await db.sql.reserve();
    try {
      await holder`SELECT pg_advisory_lock(hashtext('posthog-outbox:backfill:' || 'posthog_outbox'))`;
      await expect(backfillProfiles(db.sql, { queries: { users: USERS } })).rejects.toThrow(/another backfill-profiles is running on this schema/);
      await holder`SELECT pg_advisory_unlock(hashtext('posthog-outbox:backfill:' || 'posthog_outbox'))`;
    } finally {
      holder.release();
    }
    // through withConnection: its own client of two connections, closed afterwards
    const result = await withConnection(db.url, (sql) => backfillProfiles(sql, { queries: { organizations: ORGS } }), { max: 2 });
    expect(result.outcomes[0]).toMatchObject({ entity: 'organizations', enqueued: 7 });
  });

  it('bad options throw OutboxError before any SQL', async () => {
    const single = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      for (const [options, field, client] of [
        [{ queries: {} }, 'queries', db.sql],
        [{ queries: { user: USERS } }, 'queries.user', db.sql],
        [{ queries: { users: '  ' } }, 'queries.users', db.sql],
        [{ queries: { users: USERS }, batchSize: 0 }, 'batchSize', db.sql],
        [{ queries: { users: USERS }, queryTimeoutMs: 1.5 }, 'queryTimeoutMs', db.sql],
        [{ queries: { users: USERS } }, 'sql', single], // one connection: the lock would leave none to page with
      ] as const) {
        const error = await backfillProfiles(client, options as BackfillOptions).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(OutboxError);
        expect((error as OutboxError).field).toBe(field);
      }
    } finally {
      await single.end({ timeout: 5 });
    }
    expect(await state()).toEqual([]);
  });
});
