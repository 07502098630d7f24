/**
 * `posthog-outbox backfill-profiles` as a child process against a real PostgreSQL with application tables:
 * every profile identified exactly once per pass, only known fields, resumable after SIGKILL or SIGINT
 * without enqueueing a profile twice, --dry-run writes nothing, bad mappings change nothing.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../support/db.ts';
import { CLI, runCli } from '../support/cli.ts';
import { createWorkerDatabase, until } from '../support/worker.ts';

const USERS = 'SELECT id, email, name FROM app.users';
const ORGS = 'SELECT id, name, slug FROM app.orgs';
const AUTOMATIONS = 'SELECT id, title AS name, owner_id AS owner_user_id, org_id AS organization_id FROM app.automations';

let db: TestDatabase;
let config: string;
const env = () => ({ DATABASE_URL: db.url });

beforeAll(async () => {
  db = await createWorkerDatabase();
  await db.sql.unsafe(`
    CREATE SCHEMA app;
    CREATE TABLE app.users (id bigint PRIMARY KEY, email text, name text);
    CREATE TABLE app.orgs (id uuid PRIMARY KEY, name text, slug text);
    CREATE TABLE app.automations (id text PRIMARY KEY, title text, owner_id bigint, org_id uuid);
    -- 2,500 users; every 10th has no known field (legacy: nothing to set)
    INSERT INTO app.users SELECT i, CASE WHEN i % 10 = 0 THEN NULL ELSE 'u' || i || '@example.com' END, CASE WHEN i % 10 = 0 OR i % 3 = 0 THEN NULL ELSE 'User ' || i END
      FROM generate_series(1, 2500) AS i;
    INSERT INTO app.orgs SELECT gen_random_uuid(), 'Org ' || i, CASE WHEN i % 2 = 0 THEN 'org-' || i END FROM generate_series(1, 40) AS i;
    INSERT INTO app.automations SELECT 'auto_' || lpad(i::text, 4, '0'), CASE WHEN i % 4 <> 0 THEN 'Automation job ' || i END, i, NULL FROM generate_series(1, 60) AS i;
  `);
  config = path.join(tmpdir(), `backfill-${db.name}.json`);
  writeFileSync(config, JSON.stringify({ users: USERS, organizations: ORGS, automations: AUTOMATIONS }));
});
afterAll(async () => {
  await db?.drop();
});
beforeEach(async () => {
  await db.sql`TRUNCATE posthog_outbox.outbox, posthog_outbox.backfills, posthog_outbox.identities`;
});

async function identifies() {
  return db.sql<{ event: string; distinct_id: string; properties: Record<string, Record<string, unknown>> }[]>`
    SELECT event, distinct_id, properties FROM posthog_outbox.outbox ORDER BY distinct_id`;
}

async function expectEveryProfileOnce() {
  const rows = await identifies();
  const users = rows.filter((r) => r.event === '$identify' && !r.distinct_id.startsWith('automation_'));
  const personas = rows.filter((r) => r.distinct_id.startsWith('automation_'));
  const groups = rows.filter((r) => r.event === '$groupidentify');
  expect(users).toHaveLength(2250); // 2,500 less the 250 with nothing to set
  expect(new Set(users.map((r) => r.distinct_id)).size).toBe(2250);
  expect(personas).toHaveLength(60);
  expect(new Set(personas.map((r) => r.distinct_id)).size).toBe(60);
  expect(groups).toHaveLength(40);
  expect(new Set(groups.map((r) => r.properties.$group_key)).size).toBe(40);
  return { users, personas, groups };
}

describe('backfill-profiles', () => {
  it('identifies every user, persona and organization once, with only the known fields', async () => {
    const result = await runCli(['backfill-profiles', '--config', config, '--batch-size', '300'], { env: env(), timeoutMs: 60_000 });
    expect(result.stderr.replace(/npm warn.*\n/g, '')).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      /^users: enqueued 2250 identify event\(s\), 0 unchanged and sent within the refresh interval \(--force sends them\), skipped 250 with nothing to set in /m,
    );
    expect(result.stdout).toMatch(/^organizations: enqueued 40 /m);
    expect(result.stdout).toMatch(/^automations: enqueued 60 /m);
    const { users, personas, groups } = await expectEveryProfileOnce();
    expect(users.find((r) => r.distinct_id === '1')!.properties.$set).toEqual({ email: 'u1@example.com', name: 'User 1' });
    expect(users.find((r) => r.distinct_id === '3')!.properties.$set).toEqual({ email: 'u3@example.com' }); // no name: left out, not null
    expect(personas.find((r) => r.distinct_id === 'automation_auto_0004')!.properties.$set).toEqual({
      name: 'Automation auto_0004', // no title: the contract's fallback
      is_automation: true,
      automation_id: 'auto_0004',
      owner_user_id: '4',
    });
    expect(groups.find((r) => r.properties.$group_set!.name === 'Org 2')!.properties.$group_set).toEqual({ name: 'Org 2', slug: 'org-2' });
    expect(groups.find((r) => r.properties.$group_set!.name === 'Org 1')!.properties.$group_set).toEqual({ name: 'Org 1' });
    const state = await db.sql`SELECT entity, enqueued, finished_at IS NOT NULL AS finished FROM posthog_outbox.backfills ORDER BY entity`;
    expect(state).toEqual([
      { entity: 'automations', enqueued: 60, finished: true },
      { entity: 'organizations', enqueued: 40, finished: true },
      { entity: 'users', enqueued: 2250, finished: true },
    ]);
  });

  it('resumes after a SIGKILL without enqueueing a profile twice', async () => {
    const child = spawn(process.execPath, [CLI, 'backfill-profiles', '--users-query', USERS, '--batch-size', '5'], {
      env: { ...process.env, ...env() },
      stdio: 'ignore',
    });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    await until(
      async () => (await db.sql`SELECT enqueued FROM posthog_outbox.backfills WHERE entity = 'users'`)[0]?.enqueued ?? 0,
      (n) => n >= 200,
      { what: 'the backfill to get going' },
    );
    child.kill('SIGKILL');
    await exited;
    const [interrupted] = await db.sql`SELECT enqueued, last_id, finished_at FROM posthog_outbox.backfills WHERE entity = 'users'`;
    expect(interrupted!.finished_at).toBeNull();
    expect(await db.sql`SELECT count(*)::int AS n FROM posthog_outbox.outbox`).toEqual([{ n: interrupted!.enqueued }]);

    const resumed = await runCli(['backfill-profiles', '--config', config], { env: env(), timeoutMs: 60_000 });
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toContain(`(resumed after id ${interrupted!.last_id}; ${interrupted!.enqueued} enqueued before)`);
    await expectEveryProfileOnce();
  });

  it('stops cleanly on SIGINT after the current page, exits 130, and resumes', async () => {
    const child = spawn(process.execPath, [CLI, 'backfill-profiles', '--users-query', USERS, '--batch-size', '5'], {
      env: { ...process.env, ...env() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await until(
      async () => (await db.sql`SELECT enqueued FROM posthog_outbox.backfills WHERE entity = 'users'`)[0]?.enqueued ?? 0,
      (n) => n >= 100,
      { what: 'the backfill to get going' },
    );
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toContain('run the same command again to resume');
    const resumed = await runCli(['backfill-profiles', '--config', config], { env: env(), timeoutMs: 60_000 });
    expect(resumed.code).toBe(0);
    await expectEveryProfileOnce();
  });

  it('a finished backfill run again starts a new pass that skips what PostHog was told unchanged within the refresh interval; --force sends it; a change is sent', async () => {
    await runCli(['backfill-profiles', '--organizations-query', ORGS], { env: env() });
    const again = await runCli(['backfill-profiles', '--organizations-query', ORGS], { env: env() });
    expect(again.stdout).toMatch(/^organizations: enqueued 0 identify event\(s\), 40 unchanged /m);
    expect(again.stdout).not.toContain('resumed');
    expect(await db.sql`SELECT count(*)::int AS n FROM posthog_outbox.outbox`).toEqual([{ n: 40 }]);
    const forced = await runCli(['backfill-profiles', '--organizations-query', ORGS, '--force'], { env: env() });
    expect(forced.stdout).toMatch(/^organizations: enqueued 40 identify event\(s\), 0 unchanged /m);
    // the forced identifies supersede the 40 still queued from the first pass
    const versions = await db.sql<
      { v: number; n: number }[]
    >`SELECT identity_version::int AS v, count(*)::int AS n FROM posthog_outbox.outbox GROUP BY 1 ORDER BY 1`;
    expect(versions).toEqual([
      { v: 1, n: 40 },
      { v: 2, n: 40 },
    ]);
    // past the refresh interval (the memory's clock moved back a day), every profile is sent again
    await db.sql`UPDATE posthog_outbox.identities SET sent_at = sent_at - interval '25 hours'`;
    const stale = await runCli(['backfill-profiles', '--organizations-query', ORGS], { env: env() });
    expect(stale.stdout).toMatch(/^organizations: enqueued 40 /m);
  });

  it('--dry-run counts and writes nothing', async () => {
    const result = await runCli(['backfill-profiles', '--config', config, '--dry-run'], { env: env() });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^users: would enqueue 2250 identify event\(s\), 0 unchanged .*, skipped 250/m);
    expect(await db.sql`SELECT count(*)::int AS n FROM posthog_outbox.identities`).toEqual([{ n: 0 }]);
    expect(await db.sql`SELECT count(*)::int AS n FROM posthog_outbox.outbox`).toEqual([{ n: 0 }]);
    expect(await db.sql`SELECT count(*)::int AS n FROM posthog_outbox.backfills`).toEqual([{ n: 0 }]);
  });

  it('refuses to resume with a changed query unless --restart', async () => {
    await db.sql`INSERT INTO posthog_outbox.backfills (entity, query_hash, last_id, enqueued) VALUES ('users', 'other-query', '100', 90)`;
    const refused = await runCli(['backfill-profiles', '--users-query', USERS], { env: env() });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--restart');
    expect(await db.sql`SELECT count(*)::int AS n FROM posthog_outbox.outbox`).toEqual([{ n: 0 }]);
    const restarted = await runCli(['backfill-profiles', '--users-query', USERS, '--restart'], { env: env() });
    expect(restarted.code).toBe(0);
    expect(restarted.stdout).toMatch(/^users: enqueued 2250 /m);
  });

  describe('your queries cannot write tables (READ ONLY; docs/hosted-postgres.md says what it does not stop)', () => {
    const tables = () => db.sql`SELECT table_name FROM information_schema.tables WHERE table_schema = 'app' ORDER BY 1`.then((r) => r.map((t) => t.table_name));
    it.each([
      // balanced so that, sent as one simple-protocol string, it would be three valid statements
      [
        'a second statement after a ;',
        'SELECT 1 AS id) AS q; CREATE TABLE app.pwned (x int); SELECT 1 AS "type" FROM (SELECT 1 AS id',
        /cannot insert multiple commands into a prepared statement/,
      ],
      ['a function that writes', 'SELECT id, email, name FROM app.users WHERE app.sneaky() IS NOT NULL', /read-only transaction/],
    ])('%s: refused, nothing written', async (_label, query, message) => {
      await db.sql.unsafe(
        `CREATE OR REPLACE FUNCTION app.sneaky() RETURNS int LANGUAGE sql AS $$ INSERT INTO app.users VALUES (999999, 'x@example.com', 'X') RETURNING 1 $$`,
      );
      for (const args of [
        ['--users-query', query],
        ['--users-query', query, '--dry-run'],
      ]) {
        const result = await runCli(['backfill-profiles', ...args], { env: env() });
        expect(result.code, result.stderr).not.toBe(0);
        expect(result.stderr).toMatch(message);
      }
      expect(await tables()).toEqual(['automations', 'orgs', 'users']);
      expect(await db.sql`SELECT count(*)::int AS n FROM app.users WHERE id = 999999`).toEqual([{ n: 0 }]);
      expect(await db.sql`SELECT count(*)::int AS n FROM posthog_outbox.outbox`).toEqual([{ n: 0 }]);
    });

    it('a query that runs longer than --query-timeout is stopped', async () => {
      const result = await runCli(
        ['backfill-profiles', '--users-query', 'SELECT id, email, name FROM app.users WHERE pg_sleep(3) IS NOT NULL', '--query-timeout', '1s'],
        { env: env() },
      );
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(/statement timeout/);
    });
  });

  it.each([
    ['an unknown column', ['--users-query', 'SELECT id, email AS mail FROM app.users'], /"mail"; it may return only id, email, name/],
    ['a query that does not parse', ['--users-query', 'SELEC id FROM app.users'], /users query: .*syntax error/],
    ['a query without id', ['--organizations-query', 'SELECT name FROM app.orgs'], /organizations query: .*column .*id.* does not exist/],
    ['no query at all', [], /--config/],
    ['a missing config file', ['--config', '/nonexistent/backfill.json'], /cannot read/],
    ['an unknown config key', ['--config', 'CONFIG_WITH_TYPO'], /unknown key/],
    ['a bad batch size', ['--users-query', USERS, '--batch-size', '0'], /whole number/],
  ])('%s: exits 2 with a message, writes nothing', async (_label, args, message) => {
    const typo = path.join(tmpdir(), `backfill-typo-${db.name}.json`);
    writeFileSync(typo, JSON.stringify({ user: USERS }));
    const result = await runCli(['backfill-profiles', ...args.map((a) => (a === 'CONFIG_WITH_TYPO' ? typo : a))], { env: env() });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(await db.sql`SELECT count(*)::int AS n FROM posthog_outbox.outbox`).toEqual([{ n: 0 }]);
  });
});
