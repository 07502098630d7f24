/**
 * The demo application's own writes: what a handler writes in the same transaction as its events (a chat
 * message, an automation). This is the application's data, not the package's (whose statements are all in
 * *.sql.ts): the tables are declared for drizzle in schema.ts and created by schema.sql.
 *
 * The handlers' transactions are postgres.js ones (`sql.begin`), which `record()` joins; drizzle's query
 * builder writes the application's rows into them. An application that runs on drizzle passes drizzle's
 * own `tx` to `record()` instead.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { PostgresJsDatabase } from 'drizzle-orm/postgres-js';
import type postgres from 'postgres';
import type { DemoAutomation } from './plan-types.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
/** schema.sql: beside this file in a clone; in the package, under dev/demo/ beside dist/ (package.json `files`). */
const SCHEMA_SQL =
  [path.join(here, 'schema.sql'), path.resolve(here, '../../../dev/demo/schema.sql')].find((file) => existsSync(file)) ?? path.join(here, 'schema.sql');

/**
 * drizzle's query builder and the table declarations, loaded with the first write rather than with this
 * module, so that no CLI command's import graph holds drizzle-orm (help loads every command; the worker's
 * process must stay without it: test/worker/imports.test.ts). The builder has no connection of its own
 * (`run` executes each statement in the handler's transaction): a drizzle over the demo's postgres.js client
 * would switch that client's date parsing for every other query the demo runs through it.
 */
let loaded: Promise<{ build: PostgresJsDatabase; tables: typeof import('./schema.ts') }> | undefined;
function drizzleWriter() {
  loaded ??= Promise.all([import('drizzle-orm/postgres-js'), import('./schema.ts')]).then(([{ drizzle }, tables]) => ({ build: drizzle.mock(), tables }));
  return loaded;
}

/** Runs one built statement in `tx`, as a prepared statement like postgres.js's own tagged queries. */
async function run(tx: postgres.TransactionSql, query: { toSQL(): { sql: string; params: unknown[] } }): Promise<void> {
  const { sql, params } = query.toSQL();
  await tx.unsafe(sql, params as postgres.ParameterOrJSON<never>[], { prepare: true });
}

export interface MessageRow {
  thread: string;
  author: string;
  kind: string;
  body: string;
}

/**
 * Creates the demo application's tables (idempotent): runs schema.sql. Loads the writes' drizzle too, before
 * the worker and the traffic start, so that no handler's transaction waits for it.
 */
export async function createDemoTables(sql: postgres.Sql): Promise<void> {
  await sql.unsafe(readFileSync(SCHEMA_SQL, 'utf8'));
  await drizzleWriter();
}

export async function insertMessage(tx: postgres.TransactionSql, row: MessageRow): Promise<void> {
  const { build, tables } = await drizzleWriter();
  await run(tx, build.insert(tables.messages).values({ threadId: row.thread, author: row.author, kind: row.kind, body: row.body }));
}

/** Creates the automation, or renames it and changes its trigger if it exists. */
export async function saveAutomation(tx: postgres.TransactionSql, automation: DemoAutomation): Promise<void> {
  const { build, tables } = await drizzleWriter();
  const changes = { name: automation.name, triggerId: automation.trigger.id };
  await run(
    tx,
    build
      .insert(tables.automations)
      .values({ id: automation.id, organizationId: automation.organizationId, ownerUserId: automation.ownerUserId, ...changes })
      .onConflictDoUpdate({ target: tables.automations.id, set: changes }),
  );
}
