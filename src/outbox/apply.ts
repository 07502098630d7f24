/**
 * The outbox schema's part of `migrate()` (src/outbox/migrate.ts, which installs pg-boss after it). Applies the
 * committed drizzle-kit migrations (`migrations/`) to a database: idempotent, and safe when
 * several processes run it at once (they queue on an advisory lock and the later ones find nothing to do).
 * The migrations are written for the default schema name; another schema name is substituted in. A database
 * migrated by a newer release (its journal holds a migration this version does not know) is refused with an
 * OutboxError (`schema`, `schema_too_new`), never reported up to date.
 */
import { readMigrationFiles } from 'drizzle-orm/migrator';
import type postgres from 'postgres';
import { query } from '../sql/statement.ts';
import { quoteSchema } from './columns.ts';
import * as q from './migrations.sql.ts';
import { DEFAULT_SCHEMA } from '../connection/config.ts';
import { appliedMigrations, knownMigrations, MIGRATIONS_FOLDER, refuseUnknownMigrations } from './journal.ts';

/** The `migrations/` folder shipped with the package (src/outbox/journal.ts finds it). */
export { MIGRATIONS_FOLDER };

export interface MigrateResult {
  /** Creation times (drizzle-kit's `when`) of the migrations applied by this call; empty when up to date. */
  applied: number[];
}

export interface MigrateOutboxOptions {
  schema?: string;
  migrationsFolder?: string;
  /**
   * How long a DDL statement may wait for its table lock (default 2 s). A DDL statement queued behind a
   * transaction that uses the table blocks every later statement on that table, the handlers' inserts
   * included, for as long as it waits: it gives up after this, the migration rolls back, and it is tried
   * again after a backoff.
   */
  lockTimeoutMs?: number;
  /** Attempts before giving up on a lock (default 10, about 2 minutes with the backoff). */
  attempts?: number;
  /** Called before each retry after a lock timeout (the CLI says it on stderr). */
  onLockTimeout?: (info: { attempt: number; retryInMs: number; message: string }) => void;
}

/** Backoff between attempts after a lock timeout: 1 s doubling to 30 s. */
function lockRetryDelayMs(attempt: number): number {
  return Math.min(30_000, 1_000 * 2 ** (attempt - 1));
}

export async function migrateOutbox(sql: postgres.Sql, options: MigrateOutboxOptions = {}): Promise<MigrateResult> {
  const attempts = options.attempts ?? 10;
  for (let attempt = 1; ; attempt++) {
    try {
      return await migrateOnce(sql, options);
    } catch (error) {
      const e = error as { code?: string; message?: string };
      if (e?.code !== '55P03' || attempt >= attempts) throw error; // 55P03: lock_not_available
      const retryInMs = lockRetryDelayMs(attempt);
      options.onLockTimeout?.({ attempt, retryInMs, message: e.message ?? String(error) });
      await new Promise((r) => setTimeout(r, retryInMs));
    }
  }
}

async function migrateOnce(sql: postgres.Sql, options: MigrateOutboxOptions): Promise<MigrateResult> {
  const schema = options.schema ?? DEFAULT_SCHEMA;
  const quoted = quoteSchema(schema);
  const folder = options.migrationsFolder ?? MIGRATIONS_FOLDER;
  const migrations = readMigrationFiles({ migrationsFolder: folder });
  return sql.begin(async (tx) => {
    await query(tx, q.lockMigrations(), { schema });
    await query(tx, q.setLockTimeout(), { lockTimeoutMs: options.lockTimeoutMs ?? 2_000 });
    // A migration is identified by its creation time, as drizzle's own migrator does, so reformatting an
    // applied file does not apply it again.
    const applied = await appliedMigrations(tx, schema);
    // Before anything is applied: a schema newer than this version must not be changed by it, nor called up to date.
    refuseUnknownMigrations(applied, knownMigrations(folder));
    const done = new Set(applied);
    const appliedNow: number[] = [];
    for (const migration of migrations) {
      if (done.has(migration.folderMillis)) continue;
      for (const statement of migration.sql) {
        const text = statement.replaceAll(`"${DEFAULT_SCHEMA}"`, quoted).trim();
        if (text) await tx.unsafe(text);
      }
      await query(tx, q.createJournal(schema));
      await query(tx, q.insertJournalEntry(schema), { hash: migration.hash, createdAt: migration.folderMillis });
      appliedNow.push(migration.folderMillis);
    }
    return { applied: appliedNow };
  });
}
