/**
 * Kysely: an instance (a one-off write) or a transaction (`db.transaction().execute(async (trx) => ...)`,
 * or `db.startTransaction()`), over any Postgres dialect (pg, postgres.js, PGlite, Neon, ...).
 *
 * The statement goes through Kysely's own executor as a compiled query (what `CompiledQuery.raw()` builds),
 * so it runs on the transaction's connection and Kysely's logging sees it.
 */
import { OutboxError } from '../../errors/errors.ts';
import { classNames, hasMethod, type ClientAdapter, type Execute, type Row } from './adapter.ts';

/** The part of a `Kysely` / `Transaction` that `record()` relies on (Kysely is not imported). */
export interface KyselyConnection {
  executeQuery(query: never): Promise<unknown>;
  getExecutor(): unknown;
  readonly isTransaction: boolean;
}

/** Kysely's adapters for databases other than PostgreSQL (the outbox's SQL is PostgreSQL's). */
const OTHER_DATABASES = ['MysqlAdapter', 'SqliteAdapter', 'MssqlAdapter'];

let queries = 0;

function kyselyExecutor(connection: unknown, field: string): Execute {
  const db = connection as { executeQuery(query: unknown): Promise<{ rows: Row[] }>; getExecutor(): { adapter?: unknown } };
  const adapter = classNames(db.getExecutor().adapter).find((name) => OTHER_DATABASES.includes(name));
  if (adapter) throw new OutboxError('invalid_transaction', field, `is a Kysely instance for another database (${adapter}); the outbox needs PostgreSQL`);
  return async (text, params) => {
    // Kysely's CompiledQuery: the SQL as sent, its parameters, the operation tree (raw) and an id for plugins.
    const compiled = {
      sql: text,
      parameters: params,
      query: { kind: 'RawNode', sqlFragments: [text], parameters: [] },
      queryId: { queryId: `posthog-outbox-${++queries}` },
    };
    return (await db.executeQuery(compiled)).rows;
  };
}

export const kysely: ClientAdapter = {
  name: 'Kysely',
  matches: (connection) =>
    hasMethod(connection, 'executeQuery') &&
    hasMethod(connection, 'getExecutor') &&
    hasMethod(connection, 'selectFrom') &&
    typeof (connection as { isTransaction?: unknown }).isTransaction === 'boolean',
  executor: kyselyExecutor,
};
