import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateOutbox, MIGRATIONS_FOLDER } from '../src/outbox/migrate.ts';
import { claimBatch } from '../src/sql/index.ts';
import { NIL_UUID } from '../worker/rows.ts';
import { runCli } from './support/cli.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase({ migrate: false });
});
afterAll(async () => {
  await db.drop();
});

async function tables(schema: string) {
  const rows = await db.sql<{ table_name: string }[]>`
    SELECT table_name FROM information_schema.tables WHERE table_schema = ${schema} ORDER BY table_name`;
  return rows.map((r) => r.table_name);
}

/** Everything that describes the schema's shape, to compare before/after a second run. */
async function shape(schema: string) {
  return db.sql`
    SELECT c.table_name, c.column_name, c.data_type, c.is_nullable, c.column_default
    FROM information_schema.columns c WHERE c.table_schema = ${schema}
    UNION ALL SELECT tablename, indexname, indexdef, '', '' FROM pg_indexes WHERE schemaname = ${schema}
    ORDER BY 1, 2`;
}

/** Migrates `schema` as an installation of an earlier version would be: the migrations before `tag` only. */
async function migrateBefore(schema: string, tag: string): Promise<void> {
  const folder = await mkdtemp(path.join(tmpdir(), 'posthog-outbox-upgrade-'));
  try {
    await cp(MIGRATIONS_FOLDER, folder, { recursive: true });
    const journal = JSON.parse(await readFile(path.join(folder, 'meta', '_journal.json'), 'utf8'));
    const before = { ...journal, entries: journal.entries.filter((e: { tag: string }) => e.tag < tag) };
    await writeFile(path.join(folder, 'meta', '_journal.json'), JSON.stringify(before));
    await migrateOutbox(db.sql, { schema, migrationsFolder: folder });
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

describe('migrateOutbox', () => {
  it('creates the tables, then finds nothing to do', async () => {
    const first = await migrateOutbox(db.sql);
    expect(first.applied.length).toBeGreaterThan(0);
    expect(await tables('posthog_outbox')).toEqual(['__migrations', 'backfills', 'dead_letters', 'identities', 'outbox', 'pending', 'target_health']);
    const before = await shape('posthog_outbox');
    expect(await migrateOutbox(db.sql)).toEqual({ applied: [] });
    expect(await shape('posthog_outbox')).toEqual(before);
  });

  it('is safe when several processes migrate at once: one applies, the others wait and find nothing', async () => {
    const results = await Promise.all(Array.from({ length: 4 }, () => migrateOutbox(db.sql, { schema: 'concurrent_outbox' })));
    expect(results.filter((r) => r.applied.length > 0)).toHaveLength(1);
    expect(await tables('concurrent_outbox')).toEqual(['__migrations', 'backfills', 'dead_letters', 'identities', 'outbox', 'pending', 'target_health']);
  });

  it("leaves no trigger on the outbox (handlers' commits send no NOTIFY), also when upgrading from the version that had one", async () => {
    const triggers = (
      schema: string,
    ) => db.sql`SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = ${schema} AND NOT t.tgisinternal`;
    await migrateOutbox(db.sql);
    expect(await triggers('posthog_outbox')).toEqual([]);
    // an installation migrated up to 0001..0005 (trigger present), then upgraded
    await migrateBefore('upgraded_outbox', '0006');
    expect((await triggers('upgraded_outbox')).map((r) => r.tgname)).toEqual(['outbox_notify_worker']);
    await migrateOutbox(db.sql, { schema: 'upgraded_outbox' });
    expect(await triggers('upgraded_outbox')).toEqual([]);
    expect(await db.sql`SELECT proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'upgraded_outbox'`).toEqual([]);
  });

  it('upgrading with rows queued (0010): the claim index holds only rows that failed, and every due row is claimed, never-tried ones first', async () => {
    await migrateBefore('queued_outbox', '0010');
    // rows as record() and the worker left them before 0010: due from their write, or after a backoff
    await db.sql.unsafe(`INSERT INTO queued_outbox.outbox (uuid, event, distinct_id, properties, groups, "timestamp", attempts, next_attempt_at) VALUES
      ('00000000-0000-7000-8000-000000000001', 'e', 'u', '{}', '{}', now(), 2, now() - interval '1 second'),
      ('00000000-0000-7000-8000-000000000002', 'e', 'u', '{}', '{}', now(), 0, now() - interval '1 minute'),
      ('00000000-0000-7000-8000-000000000003', 'e', 'u', '{}', '{}', now(), 1, now() + interval '1 hour')`);
    await migrateOutbox(db.sql, { schema: 'queued_outbox' });
    const indexes = await db.sql`SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'queued_outbox' AND tablename = 'outbox' ORDER BY 1`;
    expect(indexes.map((i) => i.indexname)).toEqual(['outbox_pkey', 'outbox_retry_idx']);
    expect(indexes[1]!.indexdef).toMatch(/\(next_attempt_at\) WHERE \(attempts > 0\)$/);
    const claimed = await db.sql.begin((tx) => tx.unsafe(claimBatch('queued_outbox'), [10, 60_000, NIL_UUID]));
    expect(claimed.map((r) => r.uuid)).toEqual(['00000000-0000-7000-8000-000000000002', '00000000-0000-7000-8000-000000000001']);
    // Workers of the previous version, until they are replaced, claim every due row in next_attempt_at order
    // (their statement's shape; without its index now, a sort) and probe the same way: they keep delivering.
    const previousClaim = await db.sql.begin((tx) =>
      tx.unsafe(
        `SELECT o."uuid" FROM queued_outbox."outbox" o WHERE o."next_attempt_at" <= now() AND o."next_attempt_at" >= $1::text::timestamptz
         ORDER BY o."next_attempt_at" LIMIT 10 FOR UPDATE SKIP LOCKED`,
        ['-infinity'],
      ),
    );
    expect(previousClaim.map((r) => r.uuid)).toEqual(['00000000-0000-7000-8000-000000000002', '00000000-0000-7000-8000-000000000001']);
    const [probe] = await db.sql.unsafe(`SELECT EXISTS (SELECT 1 FROM queued_outbox."outbox" WHERE "next_attempt_at" <= now()) AS "due"`);
    expect(probe!.due).toBe(true);
  });

  it("upgrading with packs queued (0011): each event becomes a row with its pack's history; a pack jsonb cannot hold, and a row that is neither, are dead-lettered", async () => {
    await migrateBefore('packed_outbox', '0011');
    const event = (uuid: string, name: string, extra: Record<string, unknown> = {}) => ({
      uuid,
      event: name,
      distinct_id: 'user_1',
      properties: { n: name },
      groups: { organization: 'org_1' },
      timestamp: '2026-01-01T00:00:00.000Z',
      user_id: 'user_1',
      user_profile: { email: 'a@example.com' },
      automation_id: null,
      automation_profile: null,
      organization_id: 'org_1',
      organization_profile: null,
      ...extra,
    });
    const good = JSON.stringify([event('00000000-0000-7000-8000-00000000000a', 'a'), event('00000000-0000-7000-8000-00000000000b', 'b')]);
    // json takes a NUL escape that jsonb refuses: the whole pack goes to the dead letters, as its text
    const bad = JSON.stringify([event('00000000-0000-7000-8000-00000000000c', 'c', { properties: { text: 'a\u0000b' } })]);
    await db.sql.unsafe(
      `INSERT INTO packed_outbox.outbox (uuid, events, attempts, last_error, next_attempt_at) VALUES
        ('00000000-0000-7000-8000-000000000001', $1, 2, 'HTTP 503', now() + interval '1 minute'),
        ('00000000-0000-7000-8000-000000000002', $2, 0, NULL, now());
       INSERT INTO packed_outbox.outbox (uuid, attempts) VALUES ('00000000-0000-7000-8000-000000000003', 0);
       INSERT INTO packed_outbox.outbox (uuid, event, distinct_id, properties, groups, "timestamp") VALUES ('00000000-0000-7000-8000-000000000004', 'single', 'u', '{}', '{}', now());`.replace(
        /\$(\d)/g,
        (_, i) => `'${[good, bad][Number(i) - 1]!.replaceAll("'", "''")}'`,
      ),
    );
    await migrateOutbox(db.sql, { schema: 'packed_outbox' });
    const rows = await db.sql.unsafe(
      'SELECT uuid, event, properties, user_profile, attempts, last_error, next_attempt_at > now() AS waiting FROM packed_outbox.outbox ORDER BY uuid',
    );
    expect(rows.map((r) => [r.uuid.slice(-2), r.event, r.properties, r.user_profile, r.attempts, r.last_error, r.waiting])).toEqual([
      ['04', 'single', {}, null, 0, null, false],
      ['0a', 'a', { n: 'a' }, { email: 'a@example.com' }, 2, 'HTTP 503', true],
      ['0b', 'b', { n: 'b' }, { email: 'a@example.com' }, 2, 'HTTP 503', true],
    ]);
    const dead = await db.sql.unsafe('SELECT uuid, event, properties, reason FROM packed_outbox.dead_letters ORDER BY uuid');
    expect(dead.map((d) => [d.uuid.slice(-2), d.event])).toEqual([
      ['02', '(pack)'],
      ['03', ''],
    ]);
    expect(dead[0]!.properties.pack).toContain('a\\u0000b');
    expect(dead[0]!.reason).toMatch(/^migration 0011: a queued pack holds a value PostgreSQL cannot store as jsonb\/timestamptz, not sent: /);
    expect(dead[1]!.reason).toBe('migration 0011: a queued row held neither one event nor a pack, not sent');
    const [columns] = await db.sql.unsafe(
      `SELECT count(*) FILTER (WHERE column_name = 'events')::int AS events, count(*) FILTER (WHERE is_nullable = 'NO' AND column_name IN ('event', 'distinct_id', 'properties', 'groups', 'timestamp'))::int AS required
       FROM information_schema.columns WHERE table_schema = 'packed_outbox' AND table_name = 'outbox'`,
    );
    expect(columns).toEqual({ events: 0, required: 5 });
    // and the operators' view: one readable line per queued event
    const pending = await db.sql.unsafe('SELECT uuid, event, state, attempts, user_id FROM packed_outbox.pending ORDER BY uuid');
    expect(pending.map((p) => [p.uuid.slice(-2), p.event, p.state, p.attempts, p.user_id])).toEqual([
      ['04', 'single', 'due', 0, null],
      ['0a', 'a', 'waiting to retry', 2, 'user_1'],
      ['0b', 'b', 'waiting to retry', 2, 'user_1'],
    ]);
  });

  it("never waits long for a table lock (which would block the application's writes behind it): gives up, says so, tries again, succeeds once the table is free", async () => {
    // an installation at 0005, upgraded while a handler's transaction holds a row lock on the outbox
    for (const schema of ['locked_outbox', 'locked_cli']) await migrateBefore(schema, '0006');
    const handler = await db.sql.reserve();
    await handler`BEGIN`;
    await handler`LOCK TABLE locked_outbox.outbox IN ROW EXCLUSIVE MODE`;
    const waits: { attempt: number; message: string }[] = [];
    const migrated = migrateOutbox(db.sql, {
      schema: 'locked_outbox',
      lockTimeoutMs: 100,
      onLockTimeout: (info) => {
        waits.push(info);
        if (waits.length === 2) void handler`COMMIT`.then(() => undefined); // the handler's transaction ends (postgres.js runs a query once it is awaited)
      },
    });
    const since0006 = JSON.parse(await readFile(path.join(MIGRATIONS_FOLDER, 'meta', '_journal.json'), 'utf8')).entries.filter(
      (e: { tag: string }) => e.tag >= '0006',
    );
    expect((await migrated).applied).toHaveLength(since0006.length);
    expect(waits.map((w) => w.attempt)).toEqual([1, 2]);
    expect(waits[0]!.message).toMatch(/lock timeout/);
    handler.release();

    // the CLI says so on stderr and succeeds
    const cli = await db.sql.reserve();
    await cli`BEGIN`;
    await cli`LOCK TABLE locked_cli.outbox IN ROW EXCLUSIVE MODE`;
    // The lock is held until the command has said it gave up once (not for a fixed time: a loaded machine may
    // take longer than that just to start the command).
    let saidSo: () => void;
    const gaveUpOnce = new Promise<void>((resolve) => (saidSo = resolve));
    const running = runCli(['migrate', '--schema', 'locked_cli'], {
      env: { DATABASE_URL: db.url },
      timeoutMs: 30_000,
      onStderr: (stderr) => {
        if (stderr.includes('(attempt 2)')) saidSo();
      },
    });
    await Promise.race([gaveUpOnce, running]);
    await cli`COMMIT`;
    cli.release();
    const result = await running;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(
      /a table the migration changes is in use \(canceling statement due to lock timeout\); rolled back so as not to block your application's writes, trying again in 1 s \(attempt 2\)/,
    );
  }, 60_000);

  it('puts the tables in another schema when asked', async () => {
    await migrateOutbox(db.sql, { schema: 'other_schema' });
    expect(await tables('other_schema')).toEqual(['__migrations', 'backfills', 'dead_letters', 'identities', 'outbox', 'pending', 'target_health']);
  });
});

describe('the committed migrations match the drizzle schema', () => {
  it('drizzle-kit generate finds no schema changes', async () => {
    await mkdir('.data', { recursive: true });
    const dir = await mkdtemp(path.join('.data', 'drift-'));
    try {
      await cp(MIGRATIONS_FOLDER, path.join(dir, 'migrations'), { recursive: true });
      const before = await readdir(path.join(dir, 'migrations'));
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [
          'node_modules/drizzle-kit/bin.cjs',
          'generate',
          '--dialect',
          'postgresql',
          '--schema',
          './src/outbox/schema.ts',
          '--out',
          path.join(dir, 'migrations'),
        ],
        { env: { ...process.env, CI: '1' } },
      );
      expect(stdout).toContain('No schema changes');
      expect(await readdir(path.join(dir, 'migrations'))).toEqual(before);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('posthog-outbox migrate', () => {
  it('migrates a fresh database, then reports it up to date', async () => {
    const fresh = await createTestDatabase({ migrate: false });
    try {
      const first = await runCli(['migrate'], { env: { DATABASE_URL: fresh.url } });
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      expect(first.stdout).toMatch(/applied \d+ migration\(s\) to schema "posthog_outbox"/);
      expect(first.stdout).not.toContain(':postgres@'); // the password is masked
      const second = await runCli(['migrate', '--database-url', fresh.url]);
      expect(second.code).toBe(0);
      expect(second.stdout).toContain('is up to date');
    } finally {
      await fresh.drop();
    }
  });

  it('prints help', async () => {
    const result = await runCli(['migrate', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('--database-url');
    expect(result.stdout).toContain('--schema');
  });

  const bad: [string, string[], Record<string, string | undefined>, RegExp][] = [
    ['no DATABASE_URL', ['migrate'], { DATABASE_URL: undefined }, /--database-url \(DATABASE_URL\): is not set/],
    ['a malformed URL', ['migrate'], { DATABASE_URL: 'not a url' }, /--database-url \(DATABASE_URL\): is not a URL/],
    ['a non-postgres URL', ['migrate'], { DATABASE_URL: 'mysql://u:secretpw@localhost/db' }, /must start with postgres:\/\//],
    [
      'a bad schema name',
      ['migrate', '--schema', 'Bad-Name'],
      { DATABASE_URL: 'postgres://u:secretpw@localhost/db' },
      /--schema \(POSTHOG_OUTBOX_SCHEMA\): must match/,
    ],
    ['an unknown flag', ['migrate', '--nope'], {}, /unknown option '--nope'/],
    ['an unknown subcommand', ['migrat'], {}, /unknown command 'migrat'/],
  ];
  it.each(bad)('exits 2 with a one-line message on %s', async (_name, args, env, message) => {
    const result = await runCli(args, { env });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toContain('secretpw');
  });

  it('exits 1 when the database is unreachable, without printing the password', async () => {
    const result = await runCli(['migrate'], { env: { DATABASE_URL: 'postgres://app:secretpw@127.0.0.1:1/app' } });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/cannot reach the database at postgres:\/\/app:\*\*\*@127\.0\.0\.1:1\/app/);
    expect(result.stderr).not.toContain('secretpw');
  });
});
