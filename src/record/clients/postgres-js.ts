/** postgres.js: a client `sql`, the `sql` of `sql.begin(async (sql) => ...)`, or a connection from `sql.reserve()`. */
import type postgres from 'postgres';
import type { ClientAdapter, Execute, Row } from './adapter.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type PostgresJsConnection = postgres.Sql<any> | postgres.TransactionSql<any> | postgres.ReservedSql<any>;

/** drizzle's query logger (`drizzle(client, { logger })`), which sees every statement drizzle runs. */
export interface QueryLogger {
  logQuery(query: string, params: unknown[]): void;
}

export function isPostgresJs(connection: unknown): connection is PostgresJsConnection {
  return typeof connection === 'function' && typeof (connection as { unsafe?: unknown }).unsafe === 'function';
}

/**
 * Runs statements on a postgres.js connection, prepared: one round trip instead of two (describe, then
 * execute). A client created with `prepare: false` (PgBouncer in transaction mode) still wins. `logger` is
 * drizzle's, when the connection came from a drizzle transaction (drizzle's own execute() would have logged).
 */
export function postgresJsExecutor(sql: PostgresJsConnection, logger?: QueryLogger): Execute {
  return async (text, params) => {
    logger?.logQuery(text, params);
    return (await sql.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: true })) as unknown as Row[];
  };
}

export const postgresJs: ClientAdapter = {
  name: 'postgres.js',
  matches: isPostgresJs,
  executor: (connection) => postgresJsExecutor(connection as PostgresJsConnection),
};
