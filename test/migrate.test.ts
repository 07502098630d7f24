import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateOutbox, MIGRATIONS_FOLDER } from '../src/outbox/apply.ts';
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

/**
 * A copy of the package's migrations plus one more (`statements`), as the next release would ship: for
 * tests of what happens when a migration meets a schema in use.
 */
async function withNextMigration(statements: string, use: (folder: string) => Promise<void>): Promise<void> {
  const folder = await mkdtemp(path.join(tmpdir(), 'posthog-outbox-next-'));
  try {
    await cp(MIGRATIONS_FOLDER, folder, { recursive: true });
    const journal = JSON.parse(await readFile(path.join(folder, 'meta', '_journal.json'), 'utf8'));
    const last = journal.entries.at(-1);
    journal.entries.push({ ...last, idx: last.idx + 1, when: last.when + 1, tag: '0001_next' });
    await writeFile(path.join(folder, 'meta', '_journal.json'), JSON.stringify(journal));
    await writeFile(path.join(folder, '0001_next.sql'), statements);
    await use(folder);
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

  it("leaves no trigger on the outbox (handlers' commits send no NOTIFY), creates the operators' view, tunes autovacuum", async () => {
    await migrateOutbox(db.sql);
    const triggers = await db.sql`SELECT tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'posthog_outbox' AND NOT t.tgisinternal`;
    expect(triggers).toEqual([]);
    const indexes = await db.sql`SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'posthog_outbox' AND tablename = 'outbox' ORDER BY 1`;
    expect(indexes.map((i) => i.indexname)).toEqual(['outbox_pkey', 'outbox_retry_idx']);
    expect(indexes[1]!.indexdef).toMatch(/\(next_attempt_at\) WHERE \(attempts > 0\)$/);
    const [options] = await db.sql`SELECT reloptions FROM pg_class WHERE oid = 'posthog_outbox.outbox'::regclass`;
    expect(options!.reloptions).toContain('autovacuum_vacuum_scale_factor=0.01');
    await db.sql.unsafe(`INSERT INTO posthog_outbox.outbox (uuid, event, distinct_id, properties, groups, "timestamp", attempts, last_error, next_attempt_at, user_id) VALUES
      ('00000000-0000-7000-8000-000000000001', 'a', 'u', '{}', '{}', now(), 0, NULL, now(), 'user_1'),
      ('00000000-0000-7000-8000-000000000002', 'b', 'u', '{}', '{}', now(), 2, 'HTTP 503', now() + interval '1 minute', NULL),
      ('00000000-0000-7000-8000-000000000003', 'c', 'u', '{}', '{}', now(), 1, 'HTTP 503', now() - interval '1 second', NULL)`);
    const pending = await db.sql.unsafe('SELECT uuid, event, state, attempts, last_error, user_id FROM posthog_outbox.pending ORDER BY uuid');
    expect(pending.map((p) => [p.event, p.state, p.attempts, p.last_error, p.user_id])).toEqual([
      ['a', 'due', 0, null, 'user_1'],
      ['b', 'waiting to retry', 2, 'HTTP 503', null],
      ['c', 'due (retry)', 1, 'HTTP 503', null],
    ]);
    await db.sql`TRUNCATE posthog_outbox.outbox`;
  });

  it('refuses a schema a pre-release migrated (before its migrations were squashed into the baseline): drop it and migrate again', async () => {
    await migrateOutbox(db.sql, { schema: 'prerelease_outbox' });
    const [baseline] = await db.sql`SELECT created_at::bigint AS at FROM prerelease_outbox.__migrations`;
    await db.sql`INSERT INTO prerelease_outbox.__migrations (hash, created_at) VALUES ('0008_packs', ${Number(baseline!.at) - 86_400_000})`;
    const error = await migrateOutbox(db.sql, { schema: 'prerelease_outbox' }).catch((e: unknown) => e);
    expect(String(error)).toMatch(
      /the schema was migrated by a pre-release of posthog-outbox .*, before its migrations were squashed into 0000_baseline: drain the outbox, then drop the schema/,
    );
  });

  it("never waits long for a table lock (which would block the application's writes behind it): gives up, says so, tries again, succeeds once the table is free", async () => {
    // an installation at this release, upgraded (a next migration that changes the outbox) while a handler's
    // transaction holds a row lock on the outbox
    await migrateOutbox(db.sql, { schema: 'locked_outbox' });
    const handler = await db.sql.reserve();
    await handler`BEGIN`;
    await handler`LOCK TABLE locked_outbox.outbox IN ROW EXCLUSIVE MODE`;
    const waits: { attempt: number; message: string }[] = [];
    await withNextMigration('ALTER TABLE "posthog_outbox"."outbox" ADD COLUMN "next_release" integer;', async (folder) => {
      const migrated = migrateOutbox(db.sql, {
        schema: 'locked_outbox',
        migrationsFolder: folder,
        lockTimeoutMs: 100,
        onLockTimeout: (info) => {
          waits.push(info);
          if (waits.length === 2) void handler`COMMIT`.then(() => undefined); // the handler's transaction ends (postgres.js runs a query once it is awaited)
        },
      });
      expect((await migrated).applied).toHaveLength(1);
    });
    expect(waits.map((w) => w.attempt)).toEqual([1, 2]);
    expect(waits[0]!.message).toMatch(/lock timeout/);
    handler.release();
    const [column] =
      await db.sql`SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = 'locked_outbox' AND column_name = 'next_release'`;
    expect(column!.n).toBe(1);
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
