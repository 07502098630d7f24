/**
 * A database migrated by a newer release (its journal holds a migration this version of the package does not
 * know): `migrate` refuses instead of saying "up to date", and a worker refuses to start on it, since an old
 * worker can misread the rows a newer schema holds. The CLI exits 2 with the message.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OutboxError } from '../src/errors/errors.ts';
import { refuseMissingMigrations, refuseUnknownMigrations } from '../src/outbox/journal.ts';
import { MIGRATIONS_FOLDER, migrateOutbox } from '../src/outbox/apply.ts';
import { type OutboxWorker, startWorker } from '../worker/index.ts';
import { runCli } from './support/cli.ts';
import type { TestDatabase } from './support/db.ts';
import { createWorkerDatabase } from './support/worker.ts';

const journal: { entries: { when: number; tag: string }[] } = JSON.parse(readFileSync(path.join(MIGRATIONS_FOLDER, 'meta', '_journal.json'), 'utf8'));
const newest = journal.entries.at(-1)!;
/** A migration of a release after this one. */
const FUTURE = newest.when + 86_400_000;
const REFUSAL = new RegExp(
  `the database was migrated by a newer posthog-outbox \\(migration ${FUTURE}, created .*\\); this version knows up to ${newest.tag} \\(${newest.when}\\): upgrade the package`,
);

let db: TestDatabase;
beforeAll(async () => {
  db = await createWorkerDatabase();
  await db.sql`INSERT INTO posthog_outbox.__migrations (hash, created_at) VALUES ('from-a-newer-release', ${FUTURE})`;
});
afterAll(async () => db?.drop());

const journalRows = () => db.sql`SELECT created_at::text FROM posthog_outbox.__migrations ORDER BY created_at`;

describe('a schema migrated by a newer release', () => {
  it('migrateOutbox refuses with an OutboxError naming the migrations, and changes nothing', async () => {
    const before = await journalRows();
    const error = await migrateOutbox(db.sql).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OutboxError);
    expect((error as OutboxError).code).toBe('schema_too_new');
    expect((error as OutboxError).field).toBe('schema');
    expect((error as OutboxError).message).toMatch(REFUSAL);
    expect(await journalRows()).toEqual(before);
  });

  it('posthog-outbox migrate exits 2 with the message, and never says up to date', async () => {
    const result = await runCli(['migrate'], { env: { DATABASE_URL: db.url } });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(REFUSAL);
    expect(result.stdout).not.toContain('up to date');
  });

  it('startWorker refuses to start on it', async () => {
    const started: unknown = await startWorker({ databaseUrl: db.url, posthog: { apiKey: 'phc_newer', host: 'http://127.0.0.1:1' } }).catch((e: unknown) => e);
    if (!(started instanceof Error)) await (started as OutboxWorker).stop(1_000);
    expect(started).toBeInstanceOf(OutboxError);
    expect((started as OutboxError).message).toMatch(REFUSAL);
  });

  it('posthog-outbox worker exits 2 with the message', async () => {
    const result = await runCli(['worker'], {
      env: { DATABASE_URL: db.url, POSTHOG_API_KEY: 'phc_newer', POSTHOG_HOST: 'http://127.0.0.1:1', POSTHOG_OUTBOX_METRICS_PORT: undefined },
      timeoutMs: 20_000,
    });
    expect(result.signal).toBeNull(); // it exited by itself, not started and killed at the timeout
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(REFUSAL);
  });

  it('once the journal holds only migrations this version knows, migrate finds it up to date again', async () => {
    await db.sql`DELETE FROM posthog_outbox.__migrations WHERE created_at = ${FUTURE}`;
    expect(await migrateOutbox(db.sql)).toEqual({ applied: [] });
  });
});

describe('refuseUnknownMigrations', () => {
  const known = [
    { when: 1_000, tag: '0000_a' },
    { when: 3_000, tag: '0001_b' },
  ];
  it('accepts a journal of known migrations, all or some of them (a schema behind is migrated as usual)', () => {
    expect(() => refuseUnknownMigrations([1_000, 3_000], known)).not.toThrow();
    expect(() => refuseUnknownMigrations([1_000], known)).not.toThrow();
    expect(() => refuseUnknownMigrations([], known)).not.toThrow();
  });

  it('refuses an unknown migration older than the newest known one as another release’s', () => {
    const error = (() => {
      try {
        refuseUnknownMigrations([1_000, 2_000, 3_000], known);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(OutboxError);
    expect((error as OutboxError).code).toBe('schema_too_new');
    expect((error as OutboxError).message).toMatch(
      /^schema: the database holds a migration this version of posthog-outbox does not know \(migration 2000, created 1970-01-01T00:00:02.000Z\); it knows up to 0001_b \(3000\): the schema was migrated by another release/,
    );
  });
});

describe('a schema not yet migrated to this release', () => {
  it('startWorker and posthog-outbox worker refuse it (run migrate first); after migrate the worker starts', async () => {
    const behind = await createWorkerDatabase();
    try {
      // as if the last migration had not run yet
      await behind.sql`DELETE FROM posthog_outbox.__migrations WHERE created_at = ${newest.when}`;
      const options = { databaseUrl: behind.url, posthog: { apiKey: 'phc_behind', host: 'http://127.0.0.1:1' } };
      const started: unknown = await startWorker(options).catch((e: unknown) => e);
      if (!(started instanceof Error)) await (started as OutboxWorker).stop(1_000);
      expect(started).toBeInstanceOf(OutboxError);
      expect((started as OutboxError).code).toBe('schema_too_old');
      expect((started as OutboxError).message).toBe(
        `schema: the database lacks 1 migration(s) this version of posthog-outbox needs (${newest.tag}): run \`posthog-outbox migrate\` first`,
      );
      const cli = await runCli(['worker'], {
        env: { DATABASE_URL: behind.url, POSTHOG_API_KEY: 'phc_behind', POSTHOG_HOST: 'http://127.0.0.1:1', POSTHOG_OUTBOX_METRICS_PORT: undefined },
        timeoutMs: 20_000,
      });
      expect(cli.code).toBe(2);
      expect(cli.stderr).toContain(`(${newest.tag}): run \`posthog-outbox migrate\` first`);
      // the migration's own statements are idempotent only through the journal: put the entry back as migrate would
      await behind.sql`INSERT INTO posthog_outbox.__migrations (hash, created_at) VALUES ('restored', ${newest.when})`;
      const worker = await startWorker(options);
      await worker.stop(1_000);
    } finally {
      await behind.drop();
    }
  });
});

describe('refuseMissingMigrations', () => {
  const known = [
    { when: 1_000, tag: '0000_a' },
    { when: 2_000, tag: '0001_b' },
  ];
  it.each([
    ['every known migration applied', [1_000, 2_000], null],
    ['the last one missing', [1_000], 'lacks 1 migration(s) this version of posthog-outbox needs (0001_b)'],
    ['none applied', [], 'lacks 2 migration(s) this version of posthog-outbox needs (0000_a, 0001_b)'],
  ])('%s', (_name, applied, refusal) => {
    const error = (() => {
      try {
        refuseMissingMigrations(applied, known);
        return null;
      } catch (e) {
        return e as OutboxError;
      }
    })();
    if (refusal === null) expect(error).toBeNull();
    else {
      expect(error?.code).toBe('schema_too_old');
      expect(error?.message).toContain(refusal);
    }
  });
});
