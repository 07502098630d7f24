/**
 * Knex: a transaction (`knex.transaction(async (trx) => ...)` or `await knex.transaction()`), or the instance
 * for a one-off write, with the PostgreSQL client (`pg`, or another client built on Knex's PostgreSQL dialect).
 *
 * Knex's `raw()` takes `?` placeholders and turns them back into `$1`, `$2`, ... for PostgreSQL, so the
 * statement reaches the database as the other clients send it.
 */
import { OutboxError } from '../../errors/errors.ts';
import { hasMethod, type ClientAdapter, type Execute, type Row } from './adapter.ts';

/** The part of a `Knex` / `Knex.Transaction` that `record()` relies on (Knex is not imported). */
export interface KnexConnection {
  raw: (...args: never[]) => unknown;
  client: unknown;
}

/**
 * `$n`-style text as Knex's raw SQL: each `$n` becomes `?` with its value in `bindings` (in order of
 * appearance, so a parameter used twice is bound twice), and a literal `?` is escaped as `\?`.
 */
export function toKnexRaw(text: string, params: unknown[]): { sql: string; bindings: unknown[] } {
  const bindings: unknown[] = [];
  const sql = text.replace(/\?/g, '\\?').replace(/\$(\d+)/g, (_, n: string) => {
    bindings.push(params[Number(n) - 1]);
    return '?';
  });
  return { sql, bindings };
}

function knexExecutor(connection: unknown, field: string): Execute {
  const knex = connection as { raw(sql: string, bindings: unknown[]): PromiseLike<{ rows?: Row[] }>; client: { dialect?: unknown } };
  const dialect = knex.client?.dialect;
  if (dialect !== 'postgresql') {
    throw new OutboxError('invalid_transaction', field, `is a Knex instance for ${JSON.stringify(dialect)}; the outbox needs the PostgreSQL client ("pg")`);
  }
  return async (text, params) => {
    const { sql, bindings } = toKnexRaw(text, params);
    return (await knex.raw(sql, bindings)).rows ?? [];
  };
}

export const knex: ClientAdapter = {
  name: 'Knex',
  matches: (connection) =>
    typeof connection === 'function' &&
    hasMethod(connection, 'raw') &&
    hasMethod(connection, 'transaction') &&
    typeof (connection as { client?: unknown }).client === 'object',
  executor: knexExecutor,
};
