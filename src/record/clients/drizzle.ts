/**
 * drizzle: a Postgres database or transaction (`db` or the `tx` of `db.transaction(async (tx) => ...)`) over
 * any driver drizzle supports (postgres.js, node-postgres, PGlite, Neon, pg-proxy, ...).
 *
 * drizzle is recognised without importing it (as drizzle's own `is()` does, by the entity kind on the class
 * chain), so a process that never hands us a drizzle connection, the worker, never loads drizzle-orm.
 */
import type { SQL } from 'drizzle-orm';
import type { PgDatabase } from 'drizzle-orm/pg-core';
import type { ClientAdapter, Execute, Row } from './adapter.ts';
import { isPostgresJs, postgresJsExecutor, type QueryLogger } from './postgres-js.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type DrizzleConnection = PgDatabase<any, any, any>;

const ENTITY_KIND = Symbol.for('drizzle:entityKind');

/** The drizzle entity kinds of `value`'s class and its ancestors (e.g. PostgresJsTransaction, PgTransaction, PgDatabase). */
function entityKinds(value: unknown): string[] {
  const kinds: string[] = [];
  if (!value || typeof value !== 'object') return kinds;
  for (let cls = Object.getPrototypeOf(value)?.constructor; cls; cls = Object.getPrototypeOf(cls)) {
    if (Object.hasOwn(cls, ENTITY_KIND)) kinds.push(String(cls[ENTITY_KIND]));
  }
  return kinds;
}

/**
 * Turns `$1`-style text and its parameters into a drizzle SQL object. drizzle-orm is loaded on first use,
 * from where the application's own copy resolves (drizzle-orm is a peer dependency).
 */
async function toDrizzle(text: string, params: unknown[]): Promise<SQL> {
  const { sql: drizzleSql } = await import('drizzle-orm');
  const parts = text.split(/\$(\d+)/);
  const chunks: SQL[] = [];
  for (let i = 0; i < parts.length; i++) {
    chunks.push(i % 2 === 0 ? drizzleSql.raw(parts[i]!) : drizzleSql`${params[Number(parts[i]) - 1]}`);
  }
  return drizzleSql.join(chunks);
}

function drizzleExecutor(connection: unknown): Execute {
  // drizzle over postgres.js: straight to its client (the transaction's own connection), prepared.
  const session = (connection as { session?: unknown }).session as { client?: unknown; logger?: Partial<QueryLogger> } | undefined;
  const client = session?.client;
  if (entityKinds(session).includes('PostgresJsSession') && isPostgresJs(client)) {
    const logger = typeof session?.logger?.logQuery === 'function' ? (session.logger as QueryLogger) : undefined;
    return postgresJsExecutor(client, logger);
  }
  const db = connection as DrizzleConnection;
  return async (text, params) => {
    const result: unknown = await db.execute(await toDrizzle(text, params));
    return (Array.isArray(result) ? result : ((result as { rows?: Row[] }).rows ?? [])) as Row[];
  };
}

export const drizzle: ClientAdapter = {
  name: 'drizzle',
  matches: (connection) => entityKinds(connection).includes('PgDatabase'),
  executor: drizzleExecutor,
};
