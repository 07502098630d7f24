/**
 * PGlite (PostgreSQL in WebAssembly, in-process): an instance (a one-off write, or inside the caller's
 * `BEGIN`) or the `tx` of `pg.transaction(async (tx) => ...)`.
 */
import { type ClientAdapter, hasMethod, queryRowsExecutor } from './adapter.ts';

/** The part of a `PGlite` instance or transaction that `record()` relies on (PGlite is not imported). */
export interface PGliteConnection {
  query(text: never, params: never): Promise<unknown>;
  exec(text: never): Promise<unknown>;
}

export const pglite: ClientAdapter = {
  name: 'PGlite',
  matches: (connection) =>
    hasMethod(connection, 'query') &&
    hasMethod(connection, 'exec') &&
    (hasMethod(connection, 'transaction') || (hasMethod(connection, 'rollback') && typeof (connection as { closed?: unknown }).closed === 'boolean')),
  executor: queryRowsExecutor,
};
