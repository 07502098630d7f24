/**
 * Which outbox schema this version of the package knows: the migrations in its `migrations/` folder (read
 * from drizzle-kit's journal without drizzle, so the worker can check it), and the refusal of a database
 * whose journal holds a migration it does not know. Such a database was migrated by a newer release: `migrate`
 * would find "nothing to do", and a worker of this version could misread the rows the newer schema holds.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type postgres from 'postgres';
import { OutboxError } from '../errors/errors.ts';
import { query } from '../sql/statement.ts';
import * as q from './migrations.sql.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The `migrations/` folder shipped with the package (beside `src/`, or beside `dist/` once built). */
export const MIGRATIONS_FOLDER =
  [path.resolve(here, '../../migrations'), path.resolve(here, '../../../migrations')].find((dir) => existsSync(path.join(dir, 'meta', '_journal.json'))) ??
  path.resolve(here, '../../migrations');

/** A migration as drizzle-kit's journal lists it: `when` identifies it (drizzle's `folderMillis`). */
export interface KnownMigration {
  when: number;
  tag: string;
}

/** The migrations of `folder`, oldest first. */
export function knownMigrations(folder = MIGRATIONS_FOLDER): KnownMigration[] {
  const journal = JSON.parse(readFileSync(path.join(folder, 'meta', '_journal.json'), 'utf8')) as { entries: KnownMigration[] };
  return journal.entries.map(({ when, tag }) => ({ when, tag })).sort((a, b) => a.when - b.when);
}

const described = (when: number) => `migration ${when}, created ${Number.isFinite(when) ? new Date(when).toISOString() : 'at an unknown time'}`;

/**
 * Throws OutboxError (`schema`, `schema_too_new`) when `applied` (the creation times in the database's
 * journal) holds a migration `known` does not: the schema is newer than this version, or was migrated by
 * another release.
 */
export function refuseUnknownMigrations(applied: readonly number[], known: readonly KnownMigration[]): void {
  const knownTimes = new Set(known.map((m) => m.when));
  const unknown = applied.filter((when) => !knownTimes.has(when)).sort((a, b) => a - b);
  if (unknown.length === 0) return;
  const latest = known.at(-1);
  const knows = latest ? `${latest.tag} (${latest.when})` : 'no migration';
  const newest = unknown.at(-1)!;
  const baseline = known[0];
  if (baseline !== undefined && newest < baseline.when) {
    // Every unknown migration predates this release's first: a pre-release schema, whose migrations were
    // squashed into the baseline (0.1.0 had no release to upgrade from).
    throw new OutboxError(
      'schema_too_old',
      'schema',
      `the schema was migrated by a pre-release of posthog-outbox (${described(newest)}), before its migrations were squashed into ${baseline.tag}: drain the outbox, then drop the schema (DROP SCHEMA ... CASCADE) and run migrate again`,
    );
  }
  if (latest === undefined || newest > latest.when) {
    throw new OutboxError(
      'schema_too_new',
      'schema',
      `the database was migrated by a newer posthog-outbox (${described(newest)}); this version knows up to ${knows}: upgrade the package`,
    );
  }
  throw new OutboxError(
    'schema_too_new',
    'schema',
    `the database holds a migration this version of posthog-outbox does not know (${described(unknown[0]!)}); it knows up to ${knows}: the schema was migrated by another release, run that release or a newer one`,
  );
}

/** The creation times in the journal of `schema` (none before the first `migrate`), read with `sql` (a client or a transaction). */
export async function appliedMigrations(sql: postgres.Sql | postgres.TransactionSql, schema: string): Promise<number[]> {
  const [{ exists } = { exists: false }] = await query(sql, q.journalExists(), { schema });
  if (!exists) return [];
  return (await query(sql, q.appliedMigrations(schema))).map((r) => Number(r.created_at));
}

/**
 * Throws OutboxError (`schema`, `schema_too_old`) when `known` holds a migration `applied` lacks: a worker of
 * this release on a schema not yet migrated to it could misread the rows (a migration may change what a row
 * holds), so it is refused at start rather than dead-letter what it cannot read.
 */
export function refuseMissingMigrations(applied: readonly number[], known: readonly KnownMigration[]): void {
  const done = new Set(applied);
  const missing = known.filter((m) => !done.has(m.when));
  if (missing.length === 0) return;
  throw new OutboxError(
    'schema_too_old',
    'schema',
    `the database lacks ${missing.length} migration(s) this version of posthog-outbox needs (${missing.map((m) => m.tag).join(', ')}): run \`posthog-outbox migrate\` first`,
  );
}

/** The worker's start-up check: refuses (OutboxError `schema`) a schema migrated by a newer release, or not yet migrated to this one. */
export async function checkSchemaKnown(sql: postgres.Sql, schema: string): Promise<void> {
  const applied = await appliedMigrations(sql, schema);
  const known = knownMigrations();
  refuseUnknownMigrations(applied, known);
  refuseMissingMigrations(applied, known);
}
