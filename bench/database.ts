/**
 * The bench's PostgreSQL: a throwaway embedded server (with pg_stat_statements), the outbox schema, pg-boss,
 * the application's own table (`bench.chat_messages`, what a handler writes) and the event templates.
 */
import { PgBoss } from 'pg-boss';
import postgres from 'postgres';
import { startEmbeddedPostgres, type EmbeddedServer } from '../dev/embedded-postgres.ts';
import { migrate } from '../src/index.ts';
import { PGBOSS_SCHEMA } from '../src/outbox/queue.ts';
import { templates } from './events.ts';
import { ROOT } from './lib/children.ts';

export interface BenchDatabase {
  server: EmbeddedServer;
  url: string;
  /** A small pool for the bench's own statements (fills, counts, locks). */
  sql: postgres.Sql;
  version: string;
  settings: Record<string, string>;
}

/** The settings the bench reports alongside its figures (embedded-postgres' throwaway defaults included). */
const REPORTED = ['fsync', 'synchronous_commit', 'full_page_writes', 'shared_buffers', 'max_wal_size', 'work_mem', 'autovacuum'];

/**
 * Durable by default, as production runs: fsync, synchronous_commit and full_page_writes on (commits wait for
 * the WAL flush; a global lock held across it is what made NOTIFY costly). `throwaway` keeps the test
 * server's settings (all three off), for comparison with earlier results.
 */
export async function startDatabase(options: { throwaway?: boolean } = {}): Promise<BenchDatabase> {
  const durable: Record<string, string> = options.throwaway ? {} : { fsync: 'on', synchronous_commit: 'on', full_page_writes: 'on' };
  const server = await startEmbeddedPostgres({
    root: `${ROOT}/.data`,
    name: `bench-${process.pid}`,
    settings: { shared_preload_libraries: 'pg_stat_statements', max_wal_size: '4GB', 'pg_stat_statements.max': 1000, ...durable },
  });
  const sql = postgres(server.url, { max: 4, onnotice: () => {} });
  try {
    await sql`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`;
    await migrate({ databaseUrl: server.url });
    await sql.unsafe(`
      CREATE SCHEMA IF NOT EXISTS bench;
      CREATE TABLE IF NOT EXISTS bench.chat_messages (
        id bigserial PRIMARY KEY,
        thread_id text NOT NULL,
        user_id text NOT NULL,
        role text NOT NULL,
        content text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX IF NOT EXISTS chat_messages_thread_idx ON bench.chat_messages (thread_id, created_at);
      CREATE TABLE IF NOT EXISTS bench.templates (
        k int PRIMARY KEY, event text NOT NULL, distinct_id text NOT NULL, properties jsonb NOT NULL, groups jsonb NOT NULL,
        user_id text, user_profile jsonb, automation_id text, automation_profile jsonb, organization_id text, organization_profile jsonb 
      );`);
    const rows = templates().map((t, k) => ({
      k,
      event: t.event,
      distinct_id: t.distinctId,
      properties: t.properties,
      groups: t.groups,
      user_id: t.profiles.user?.id ?? null,
      user_profile: t.profiles.user?.fields ?? null,
      automation_id: t.profiles.automation?.id ?? null,
      automation_profile: t.profiles.automation?.fields ?? null,
      organization_id: t.profiles.organization?.id ?? null,
      organization_profile: t.profiles.organization?.fields ?? null,
    }));
    await sql.unsafe(
      `INSERT INTO bench.templates SELECT * FROM json_to_recordset($1::text::json) AS r(k int, event text, distinct_id text, properties jsonb, groups jsonb,
         user_id text, user_profile jsonb, automation_id text, automation_profile jsonb, organization_id text, organization_profile jsonb)`,
      [JSON.stringify(rows)],
    );
    const [{ version }] = (await sql`SELECT current_setting('server_version') AS version`) as unknown as [{ version: string }];
    const settings = Object.fromEntries(
      (await sql<{ name: string; setting: string; unit: string | null }[]>`SELECT name, setting, unit FROM pg_settings WHERE name = ANY(${REPORTED})`).map(
        (r) => [r.name, r.unit ? `${r.setting} ${r.unit}` : r.setting],
      ),
    );
    return { server, url: server.url, sql, version, settings };
  } catch (error) {
    await sql.end({ timeout: 1 }).catch(() => undefined);
    await server.stop();
    throw error;
  }
}

/** A pg-boss instance for the bench's own use (creating queues, filling jobs, sends in write-cost). */
export async function startBoss(url: string, max = 4): Promise<PgBoss> {
  const boss = new PgBoss({ connectionString: url, schema: PGBOSS_SCHEMA, migrate: false, createSchema: false, schedule: false, supervise: false, max });
  boss.on('error', () => {});
  await boss.start();
  return boss;
}
