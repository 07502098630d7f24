/**
 * Runs a statement on the caller's connection, whichever client it comes from: a drizzle database or
 * transaction (any Postgres driver drizzle supports), or a postgres.js `sql` / transaction `sql`.
 *
 * drizzle is recognised without importing it (as drizzle's own `is()` does, by the entity kind on the class
 * chain), so a process that never hands us a drizzle connection, the worker, never loads drizzle-orm.
 */
import type { PgDatabase } from 'drizzle-orm/pg-core';
import type { SQL } from 'drizzle-orm';
import type postgres from 'postgres';
import { OutboxError } from '../errors.ts';

/** A drizzle Postgres database or transaction (`db` or the `tx` of `db.transaction(async (tx) => ...)`). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type DrizzleConnection = PgDatabase<any, any, any>;
/** A postgres.js client, the `sql` of `sql.begin(async (sql) => ...)`, or a connection from `sql.reserve()`. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type PostgresJsConnection = postgres.Sql<any> | postgres.TransactionSql<any> | postgres.ReservedSql<any>;
/** Where to write: pass your transaction so the event commits or rolls back with your own rows. */
export type Connection = DrizzleConnection | PostgresJsConnection;

type Row = Record<string, unknown>;
export type Execute = (text: string, params: unknown[]) => Promise<Row[]>;

const ENTITY_KIND = Symbol.for('drizzle:entityKind');

/** The drizzle entity kinds of `value`'s class and its ancestors (e.g. PostgresJsTransaction, PgTransaction, PgDatabase). */
function entityKinds(value: unknown): string[] {
  const kinds: string[] = [];
  if (!value || typeof value !== 'object') return kinds;
  for (let cls = Object.getPrototypeOf(value)?.constructor; cls; cls = Object.getPrototypeOf(cls)) {
    if (Object.prototype.hasOwnProperty.call(cls, ENTITY_KIND)) kinds.push(String(cls[ENTITY_KIND]));
  }
  return kinds;
}

function isPostgresJs(connection: unknown): connection is PostgresJsConnection {
  return typeof connection === 'function' && typeof (connection as { unsafe?: unknown }).unsafe === 'function';
}

/** Turns `$1`-style text and its parameters into a drizzle SQL object (drizzle is loaded on first use). */
async function toDrizzle(text: string, params: unknown[]): Promise<SQL> {
  const { sql: drizzleSql } = await import('drizzle-orm');
  const parts = text.split(/\$(\d+)/);
  const chunks: SQL[] = [];
  for (let i = 0; i < parts.length; i++) {
    chunks.push(i % 2 === 0 ? drizzleSql.raw(parts[i]!) : drizzleSql`${params[Number(parts[i]) - 1]}`);
  }
  return drizzleSql.join(chunks);
}

/** drizzle's query logger (`drizzle(client, { logger })`), which sees every statement drizzle runs. */
interface DrizzleLogger {
  logQuery(query: string, params: unknown[]): void;
}

/** Runs statements on a postgres.js connection, prepared: one round trip instead of two (describe, then execute). */
function postgresJsExecutor(sql: PostgresJsConnection, logger?: DrizzleLogger): Execute {
  // A client created with `prepare: false` (PgBouncer in transaction mode) still wins.
  return async (text, params) => {
    logger?.logQuery(text, params); // as drizzle's own execute() would have
    return (await sql.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: true })) as unknown as Row[];
  };
}

/** Returns how to run statements on `connection`, or throws OutboxError when it is neither client. */
export function executorFor(connection: unknown, field = 'tx'): Execute {
  if (entityKinds(connection).includes('PgDatabase')) {
    // drizzle over postgres.js: straight to its client (the transaction's own connection), prepared.
    const session = (connection as { session?: unknown }).session as { client?: unknown; logger?: Partial<DrizzleLogger> } | undefined;
    const client = session?.client;
    if (entityKinds(session).includes('PostgresJsSession') && isPostgresJs(client)) {
      const logger = typeof session?.logger?.logQuery === 'function' ? (session.logger as DrizzleLogger) : undefined;
      return postgresJsExecutor(client, logger);
    }
    const db = connection as DrizzleConnection;
    return async (text, params) => {
      const result: unknown = await db.execute(await toDrizzle(text, params));
      return (Array.isArray(result) ? result : ((result as { rows?: Row[] }).rows ?? [])) as Row[];
    };
  }
  if (isPostgresJs(connection)) return postgresJsExecutor(connection);
  throw new OutboxError(
    'invalid_transaction',
    field,
    'must be a drizzle Postgres database/transaction or a postgres.js sql/transaction; pass the transaction your handler writes in',
  );
}
