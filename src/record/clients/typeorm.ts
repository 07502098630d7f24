/**
 * TypeORM (the `postgres` driver): the `EntityManager` of `dataSource.transaction(async (manager) => ...)`,
 * or a `QueryRunner` after `queryRunner.startTransaction()` (its `manager` too).
 *
 * Only a transaction is taken. A `DataSource`, or its `dataSource.manager`, would run the statement on a
 * connection of the pool outside the handler's transaction: inside `transaction()` that is TypeORM's usual
 * slip, so it is refused, saying what to pass (a one-off write is `dataSource.transaction((m) => record(m, e))`).
 * The statement runs on the transaction's query runner, which hands PostgreSQL's `$1`, `$2`, ... to pg as is.
 */
import { OutboxError } from '../../errors/errors.ts';
import { hasMethod, type ClientAdapter, type Execute, type Row } from './adapter.ts';

/** The part of a TypeORM `EntityManager` or `QueryRunner` that `record()` relies on (TypeORM is not imported). */
export type TypeOrmConnection =
  // an EntityManager; a DataSource (which has a `manager`) does not type-check
  | { readonly '@instanceof': symbol; query(query: string, parameters?: never[]): Promise<unknown>; readonly queryRunner?: unknown; manager?: never }
  | { startTransaction(...args: never[]): Promise<void>; query(query: string, parameters?: never[], ...rest: never[]): Promise<unknown> };

interface QueryRunner {
  isTransactionActive?: unknown;
  isReleased?: unknown;
  driver?: { options?: { type?: unknown } };
  query(query: string, parameters: unknown[], useStructuredResult: true): Promise<{ records?: Row[] }>;
}

const marker = (value: unknown): unknown => (value !== null && typeof value === 'object' ? (value as { '@instanceof'?: unknown })['@instanceof'] : undefined);
const isDataSource = (value: unknown) => marker(value) === Symbol.for('DataSource');
const isEntityManager = (value: unknown) => marker(value) === Symbol.for('EntityManager');
const isQueryRunner = (value: unknown) =>
  hasMethod(value, 'startTransaction') &&
  hasMethod(value, 'commitTransaction') &&
  hasMethod(value, 'query') &&
  typeof (value as { isTransactionActive?: unknown }).isTransactionActive === 'boolean';

const PASS = 'pass the `manager` of dataSource.transaction(async (manager) => ...), or a QueryRunner after startTransaction()';

function typeOrmExecutor(connection: unknown, field: string): Execute {
  if (isDataSource(connection)) throw new OutboxError('invalid_transaction', field, `is a TypeORM DataSource, outside any transaction; ${PASS}`);
  const runner = (isQueryRunner(connection) ? connection : (connection as { queryRunner?: unknown }).queryRunner) as QueryRunner | undefined;
  if (!runner) throw new OutboxError('invalid_transaction', field, `is a TypeORM EntityManager outside a transaction (such as dataSource.manager); ${PASS}`);
  if (runner.isReleased === true || runner.isTransactionActive !== true) {
    const what = isQueryRunner(connection)
      ? 'a TypeORM QueryRunner outside a transaction (before startTransaction(), or after its commit, rollback or release)'
      : 'a TypeORM EntityManager whose transaction has ended (or not begun)';
    throw new OutboxError('invalid_transaction', field, `is ${what}; ${PASS}`);
  }
  const type = runner.driver?.options?.type;
  if (type !== 'postgres')
    throw new OutboxError('invalid_transaction', field, `is a TypeORM connection of type ${JSON.stringify(type)}; the outbox needs the "postgres" driver`);
  return async (text, params) => (await runner.query(text, params, true)).records ?? [];
}

export const typeOrm: ClientAdapter = {
  name: 'TypeORM',
  matches: (connection) => isDataSource(connection) || isEntityManager(connection) || isQueryRunner(connection),
  executor: typeOrmExecutor,
};
