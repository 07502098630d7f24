/**
 * node-postgres (`pg`): a `Client` or a `PoolClient` from `pool.connect()` (inside the caller's `BEGIN` /
 * `COMMIT`, the event is part of that transaction), or a `Pool` (a one-off write on whichever connection the
 * pool lends). Libraries with the same API (Neon's serverless driver) are recognised alike.
 */
import { type ClientAdapter, hasMethod, queryRowsExecutor } from './adapter.ts';

/** The part of a `pg` `Client`, `PoolClient` or `Pool` that `record()` relies on (pg is not imported). */
export interface NodePostgresConnection {
  query(text: never, values: never): Promise<unknown>;
  connect(...args: never[]): unknown;
}

function isClient(connection: unknown): boolean {
  return typeof (connection as { connectionParameters?: unknown }).connectionParameters === 'object';
}

function isPool(connection: unknown): boolean {
  const pool = connection as { totalCount?: unknown; idleCount?: unknown };
  return typeof pool.totalCount === 'number' && typeof pool.idleCount === 'number';
}

export const nodePostgres: ClientAdapter = {
  name: 'node-postgres',
  matches: (connection) => hasMethod(connection, 'query') && hasMethod(connection, 'connect') && (isClient(connection) || isPool(connection)),
  executor: queryRowsExecutor,
};
