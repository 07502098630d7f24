/**
 * Runs a statement on the caller's connection, whichever client it comes from: a drizzle database or
 * transaction (any Postgres driver drizzle supports), or a postgres.js `sql` / transaction `sql`.
 */
import { is, sql as drizzleSql, type SQL } from 'drizzle-orm';
import { PgDatabase } from 'drizzle-orm/pg-core';
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

/** Turns `$1`-style text and its parameters into a drizzle SQL object. */
function toDrizzle(text: string, params: unknown[]): SQL {
  const parts = text.split(/\$(\d+)/);
  const chunks: SQL[] = [];
  for (let i = 0; i < parts.length; i++) {
    chunks.push(i % 2 === 0 ? drizzleSql.raw(parts[i]!) : drizzleSql`${params[Number(parts[i]) - 1]}`);
  }
  return drizzleSql.join(chunks);
}

/** Returns how to run statements on `connection`, or throws OutboxError when it is neither client. */
export function executorFor(connection: unknown, field = 'tx'): Execute {
  if (is(connection, PgDatabase)) {
    const db = connection as DrizzleConnection;
    return async (text, params) => {
      const result: unknown = await db.execute(toDrizzle(text, params));
      return (Array.isArray(result) ? result : ((result as { rows?: Row[] }).rows ?? [])) as Row[];
    };
  }
  if (typeof connection === 'function' && typeof (connection as { unsafe?: unknown }).unsafe === 'function') {
    const sql = connection as PostgresJsConnection;
    // prepare: one round trip instead of two (describe, then execute) for statements whose text never
    // changes; a client created with `prepare: false` (PgBouncer in transaction mode) still wins.
    return async (text, params) => (await sql.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: true })) as unknown as Row[];
  }
  throw new OutboxError(
    'invalid_transaction',
    field,
    'must be a drizzle Postgres database/transaction or a postgres.js sql/transaction; pass the transaction your handler writes in',
  );
}
