/**
 * Applies the committed drizzle-kit migrations (`migrations/`) to a database: idempotent, and safe when
 * several processes run it at once (they queue on an advisory lock and the later ones find nothing to do).
 * The migrations are written for the default schema name; another schema name is substituted in.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import type postgres from 'postgres';
import * as q from '../sql.ts';
import { DEFAULT_SCHEMA } from '../config.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The `migrations/` folder shipped with the package (beside `src/`, or beside `dist/` once built). */
export const MIGRATIONS_FOLDER =
  [path.resolve(here, '../../migrations'), path.resolve(here, '../../../migrations')].find((dir) =>
    existsSync(path.join(dir, 'meta', '_journal.json')),
  ) ?? path.resolve(here, '../../migrations');

export interface MigrateResult {
  /** Creation times (drizzle-kit's `when`) of the migrations applied by this call; empty when up to date. */
  applied: number[];
}

export async function migrateOutbox(sql: postgres.Sql, options: { schema?: string; migrationsFolder?: string } = {}): Promise<MigrateResult> {
  const schema = options.schema ?? DEFAULT_SCHEMA;
  const quoted = q.quoteSchema(schema);
  const migrations = readMigrationFiles({ migrationsFolder: options.migrationsFolder ?? MIGRATIONS_FOLDER });
  return sql.begin(async (tx) => {
    await tx.unsafe(q.lockMigrations(), [schema]);
    const [{ exists } = { exists: false }] = await tx.unsafe<{ exists: boolean }[]>(q.journalExists(), [schema]);
    // A migration is identified by its creation time, as drizzle's own migrator does, so reformatting an
    // applied file does not apply it again.
    const done = new Set(exists ? (await tx.unsafe<{ created_at: string }[]>(q.appliedMigrations(schema))).map((r) => Number(r.created_at)) : []);
    const applied: number[] = [];
    for (const migration of migrations) {
      if (done.has(migration.folderMillis)) continue;
      for (const statement of migration.sql) {
        const text = statement.replaceAll(`"${DEFAULT_SCHEMA}"`, quoted).trim();
        if (text) await tx.unsafe(text);
      }
      await tx.unsafe(q.createJournal(schema));
      await tx.unsafe(q.insertJournalEntry(schema), [migration.hash, migration.folderMillis]);
      applied.push(migration.folderMillis);
    }
    return { applied };
  });
}
