/**
 * PGlite (PostgreSQL in WebAssembly, in-process): an instance (a one-off write, or inside the caller's
 * `BEGIN`) or the `tx` of `pg.transaction(async (tx) => ...)`.
 */
import { hasMethod, type ClientAdapter, type Execute, type Row } from './adapter.ts';

/** The part of a `PGlite` instance or transaction that `record()` relies on (PGlite is not imported). */
export interface PGliteConnection {
  query(text: never, params: never): Promise<unknown>;
  exec(text: never): Promise<unknown>;
}

function pgliteExecutor(connection: unknown): Execute {
  const pg = connection as { query(text: string, params: unknown[]): Promise<{ rows: Row[] }> };
  return async (text, params) => (await pg.query(text, params)).rows;
}

export const pglite: ClientAdapter = {
  name: 'PGlite',
  matches: (connection) =>
    hasMethod(connection, 'query') &&
    hasMethod(connection, 'exec') &&
    (hasMethod(connection, 'transaction') || (hasMethod(connection, 'rollback') && typeof (connection as { closed?: unknown }).closed === 'boolean')),
  executor: pgliteExecutor,
};
