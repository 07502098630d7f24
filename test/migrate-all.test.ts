/**
 * `migrate()` installs everything the worker needs, as `posthog-outbox migrate` does: on a fresh database it
 * is the only step before `startWorker`. Running it again, or from several processes at once, is safe.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCaptureServer, type CaptureServer } from '../dev/capture-server.ts';
import { attributedEvent, migrate, OutboxError, record } from '../src/index.ts';
import { drainQueueName, PGBOSS_SCHEMA } from '../src/outbox/queue.ts';
import { startWorker } from '../worker/index.ts';
import { createTestDatabase, type TestDatabase } from './support/db.ts';
import { until } from './support/worker.ts';

const KEY = 'phc_migrate_all';
const OUTBOX_TABLES = ['__migrations', 'backfills', 'dead_letters', 'identities', 'outbox', 'pending', 'target_health'];

let capture: CaptureServer;
const databases: TestDatabase[] = [];
async function freshDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase({ migrate: false });
  databases.push(db);
  return db;
}

beforeAll(async () => {
  capture = await startCaptureServer({ apiKey: KEY });
});
afterAll(async () => {
  await capture?.close();
  for (const db of databases) await db.drop();
});

async function tables(db: TestDatabase, schema: string): Promise<string[]> {
  const rows = await db.sql<{ table_name: string }[]>`
    SELECT table_name FROM information_schema.tables WHERE table_schema = ${schema} ORDER BY table_name`;
  return rows.map((r) => r.table_name);
}

async function queues(db: TestDatabase): Promise<string[]> {
  const rows = await db.sql.unsafe<{ name: string }[]>(`SELECT name FROM ${PGBOSS_SCHEMA}.queue ORDER BY name`);
  return rows.map((r) => r.name);
}

describe('migrate()', () => {
  it('on a fresh database is all startWorker needs: the worker starts and delivers', async () => {
    const db = await freshDatabase();
    const { applied } = await migrate({ databaseUrl: db.url });
    expect(applied.length).toBeGreaterThan(0);
    expect(await tables(db, 'posthog_outbox')).toEqual(OUTBOX_TABLES);
    expect(await queues(db)).toEqual([drainQueueName('posthog_outbox')]);

    const worker = await startWorker({ databaseUrl: db.url, posthog: { apiKey: KEY, host: capture.url } });
    try {
      const event = attributedEvent({ organization: { id: 'org_m' }, user: { id: 'user_m' } }, 'chat_message_sent', {});
      await db.sql.begin((tx) => record(tx, [event]));
      await until(
        () => capture.events.filter((e) => e.event === 'chat_message_sent').length,
        (n) => n === 1,
        { what: 'the event to reach the capture server' },
      );
    } finally {
      await worker.stop(5_000);
    }
  });

  it('a second run finds nothing to do and changes nothing', async () => {
    const db = await freshDatabase();
    await migrate({ databaseUrl: db.url, schema: 'twice' });
    const before = await db.sql`SELECT created_at::text FROM twice.__migrations ORDER BY created_at`;
    expect(await migrate({ databaseUrl: db.url, schema: 'twice' })).toEqual({ applied: [] });
    expect(await db.sql`SELECT created_at::text FROM twice.__migrations ORDER BY created_at`).toEqual(before);
    expect(await queues(db)).toEqual([drainQueueName('twice')]);
  });

  it('from several processes at once on a fresh database: one applies the migrations, every one succeeds, pg-boss is installed once', async () => {
    const db = await freshDatabase();
    const results = await Promise.all(Array.from({ length: 4 }, () => migrate({ databaseUrl: db.url })));
    expect(results.filter((r) => r.applied.length > 0)).toHaveLength(1);
    expect(await tables(db, 'posthog_outbox')).toEqual(OUTBOX_TABLES);
    expect(await queues(db)).toEqual([drainQueueName('posthog_outbox')]);
    const [version] = await db.sql.unsafe<{ n: number }[]>(`SELECT count(*)::int AS n FROM ${PGBOSS_SCHEMA}.version`);
    expect(version!.n).toBe(1);
  });

  it('another schema gets its own tables and drain queue beside the first, sharing pg-boss', async () => {
    const db = await freshDatabase();
    await Promise.all([migrate({ databaseUrl: db.url }), migrate({ databaseUrl: db.url, schema: 'analytics_outbox' })]);
    expect(await tables(db, 'analytics_outbox')).toEqual(OUTBOX_TABLES);
    expect(await queues(db)).toEqual([drainQueueName('posthog_outbox'), drainQueueName('analytics_outbox')].sort());
  });

  it('refuses a bad URL or schema name with an OutboxError naming the option, before connecting', async () => {
    const badUrl = await migrate({ databaseUrl: 'mysql://localhost/app' }).catch((e: unknown) => e);
    expect(badUrl).toBeInstanceOf(OutboxError);
    expect((badUrl as OutboxError).field).toBe('databaseUrl');
    const badSchema = await migrate({ databaseUrl: 'postgres://nobody@127.0.0.1:1/none', schema: 'no"quotes' }).catch((e: unknown) => e);
    expect(badSchema).toBeInstanceOf(OutboxError);
    expect((badSchema as OutboxError).field).toBe('schema');
  });

  it('says which server it cannot reach, the password masked', async () => {
    const error = await migrate({ databaseUrl: 'postgres://app:s3cret@127.0.0.1:1/app' }).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/^cannot reach the database at postgres:\/\/app:\*\*\*@127\.0\.0\.1:1\/app/);
    expect((error as Error).message).not.toContain('s3cret');
  });
});
