/**
 * MikroORM (6, `@mikro-orm/postgresql`): the `EntityManager` of `em.transactional(async (em) => ...)`, or an
 * `em` between `em.begin()` and `em.commit()` / `em.rollback()`.
 *
 * Only an `em` in a transaction is taken: outside one, MikroORM would run the statement on another
 * connection of the pool (inside `transactional()` the outer `em` is the usual slip), and a `MikroORM`
 * instance is no `em` at all; both are refused, saying what to pass. The statement goes through
 * `em.execute()`, MikroORM's own raw query (its logger and exceptions), which takes Knex-style `?`
 * placeholders and inlines each value as an escaped literal.
 */
import { OutboxError } from '../../errors/errors.ts';
import { classNames, hasMethod, type ClientAdapter, type Execute, type Row } from './adapter.ts';
import { toKnexRaw } from './knex.ts';

/** The part of a MikroORM `EntityManager` that `record()` relies on (MikroORM is not imported). */
export interface MikroOrmEntityManager {
  transactional(...args: never[]): Promise<unknown>;
  getTransactionContext(): unknown;
  fork(...args: never[]): unknown;
}

interface EntityManager {
  getTransactionContext(): unknown;
  getConnection(): { getKnex?(): { client?: { dialect?: unknown } } };
  getPlatform(): unknown;
  execute(query: string, params: unknown[], method: 'all'): Promise<Row[]>;
}

const isEntityManager = (value: unknown) =>
  hasMethod(value, 'transactional') && hasMethod(value, 'getTransactionContext') && hasMethod(value, 'fork') && hasMethod(value, 'getConnection');

const isMikroOrm = (value: unknown) => classNames(value).includes('MikroORM') && isEntityManager((value as { em?: unknown }).em);

const PASS = 'pass the `em` of em.transactional(async (em) => ...)';

/** The database behind `em`: PostgreSQL's Knex dialect, or the class name of another database's platform. */
function database(em: EntityManager): string | undefined {
  const dialect = em.getConnection().getKnex?.().client?.dialect;
  if (typeof dialect === 'string') return dialect;
  return classNames(em.getPlatform()).find((name) => name.endsWith('Platform') && name !== 'Platform' && name !== 'AbstractSqlPlatform');
}

function mikroOrmExecutor(connection: unknown, field: string): Execute {
  if (isMikroOrm(connection)) throw new OutboxError('invalid_transaction', field, `is a MikroORM instance; ${PASS} (orm.em.transactional for a one-off)`);
  const em = connection as EntityManager;
  if (!hasMethod(em, 'execute'))
    throw new OutboxError('invalid_transaction', field, 'is a MikroORM EntityManager of a database without SQL; the outbox needs PostgreSQL');
  if (em.getTransactionContext() === undefined) {
    throw new OutboxError('invalid_transaction', field, `is a MikroORM EntityManager outside a transaction; ${PASS}`);
  }
  const db = database(em);
  if (db !== 'postgresql' && db !== 'PostgreSqlPlatform') {
    throw new OutboxError('invalid_transaction', field, `is a MikroORM EntityManager for ${JSON.stringify(db)}; the outbox needs the PostgreSQL driver`);
  }
  return (text, params) => {
    const { sql, bindings } = toKnexRaw(text, params);
    return em.execute(sql, bindings, 'all');
  };
}

export const mikroOrm: ClientAdapter = {
  name: 'MikroORM',
  matches: (connection) => isEntityManager(connection) || isMikroOrm(connection),
  executor: mikroOrmExecutor,
};
