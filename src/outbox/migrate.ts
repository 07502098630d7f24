/**
 * `migrate()`: everything a database needs before `startWorker` (or `posthog-outbox worker`) runs on it, in
 * one call, as `posthog-outbox migrate` does (the CLI command is a thin layer over it): the outbox schema's
 * migrations (src/outbox/apply.ts), then pg-boss's schema and the drain queue (src/outbox/queue.ts). Idempotent,
 * and safe when several processes run it at once (the migrations queue on an advisory lock; pg-boss
 * installs under its own).
 */
import { checkDatabaseUrl, connectDatabase, DEFAULT_SCHEMA } from '../connection/config.ts';
import { type MigrateOutboxOptions, type MigrateResult, migrateOutbox } from './apply.ts';
import { refuseTransactionPooler } from '../connection/pooler.ts';
import { installPgBoss } from './queue.ts';
import { quoteSchema } from './columns.ts';

export type { MigrateResult };

export interface MigrateOptions extends Omit<MigrateOutboxOptions, 'schema' | 'migrationsFolder'> {
  /**
   * A direct connection or a session-mode pooler, as the role that owns (or may create) the outbox's schema
   * and pg-boss's: `migrate` takes an advisory lock and runs pg-boss's installer, so a transaction-mode
   * pooler is refused (OutboxError `transaction_pooler`, field `databaseUrl`).
   */
  databaseUrl: string;
  /** The outbox's schema (default `posthog_outbox`); its drain queue is named after it. */
  schema?: string;
}

/**
 * Creates or upgrades the outbox schema, then installs or upgrades pg-boss's schema (`pgboss`) with the
 * schema's drain queue. Resolves with the outbox migrations this call applied (none: up to date). Throws
 * OutboxError for a bad URL or schema name, a transaction-mode pooler (`databaseUrl`) or a schema migrated by
 * a newer release (`schema`, `schema_too_new`), and an Error naming the server (password masked) when the
 * database cannot be reached.
 */
export async function migrate(options: MigrateOptions): Promise<MigrateResult> {
  const { databaseUrl: url, schema = DEFAULT_SCHEMA, ...outboxOptions } = options;
  const databaseUrl = checkDatabaseUrl(url, 'databaseUrl');
  quoteSchema(schema);
  // DDL under an advisory lock, and pg-boss's installer: a session of its own, not a transaction pooler.
  const sql = await connectDatabase(databaseUrl, { max: 1 });
  try {
    await refuseTransactionPooler(databaseUrl, 'databaseUrl');
    const result = await migrateOutbox(sql, { ...outboxOptions, schema });
    await installPgBoss(databaseUrl, schema);
    return result;
  } finally {
    await sql.end({ timeout: 5 });
  }
}
